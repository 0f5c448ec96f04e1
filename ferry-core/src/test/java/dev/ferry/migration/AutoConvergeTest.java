package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.testing.Incoming;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Auto-converge in a real in-process migration: the machine's vCPUs get throttled, each change is a
 * {@code ferry.ThrottleStep} JFR event, the throttle ends with the migration, and the stopped
 * source equals the destination.
 */
@Timeout(120)
class AutoConvergeTest {
  @TempDir Path dir;

  @Test
  void aThrottledMigrationCompletesAndRecordsItsThrottleSteps() throws Exception {
    Path jfr = dir.resolve("t.jfr");
    // 4 MiB dirtied at random (up to 64 MB/s, less on a loaded machine) against 8 MiB/s and a 10 ms
    // downtime limit (20 pages): converges only once throttled hard, however fast the guest runs;
    // a trigger of 5% of the bytes sent makes even a slow guest's dirtying count
    ProgramOptions po = ProgramOptions.defaults().withPagesPerStep(16).withDirtyRateBytesPerSec(64L << 20);
    try (Recording rec = new Recording()) {
      rec.enable("ferry.ThrottleStep");
      rec.start();
      try (MachineHost src = new MachineHost(Machine.builder().memory(4L << 20).program("random").programOptions(po).build());
          MachineHost dst = new MachineHost(Machine.builder().memory(4L << 20).program("random").build())) {
        src.machine().resume();
        while (src.machine().cpu(0).reg(2) < 2048) { // the guest wrote its RAM over twice
          Thread.sleep(10);
        }
        String uri = "unix:" + dir.resolve("ac.sock");
        Incoming incoming = Incoming.listen(dst, uri);
        src.migration().setCapabilities(Map.of(MigrationCapability.AUTO_CONVERGE, true));
        src.migration().setParameters(Map.of("max-bandwidth", 8L << 20, "cpu-throttle-initial", 99L,
            "downtime-limit", 10L, "throttle-trigger-threshold", 5L));
        OutgoingMigration out = src.migration().migrate(uri);
        MigrationStatus end;
        // polled only for the range: a throttled stretch can be shorter than a poll on a loaded
        // machine; that the vCPUs were throttled is proven by the recorded ThrottleStep events below
        while ((end = out.await(10, TimeUnit.MILLISECONDS)) == null) {
          assertThat(src.machine().cpuThrottle()).isIn(0, 99);
          assertThat(out.info().cpuThrottlePercentage()).isIn(0, 99);
        }
        assertThat(end).as("%s", src.migration().outgoingState().errorDesc()).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(src.machine().cpuThrottle()).as("the throttle ends with the migration").isZero();
        assertThat(out.info().cpuThrottlePercentage()).isZero();
        incoming.await(60, TimeUnit.SECONDS);
        dst.startAfterLoad(true);
        assertThat(src.memoryDigest().firstDifference(dst.memoryDigest())).isEmpty();
      }
      rec.stop();
      rec.dump(jfr);
    }
    List<RecordedEvent> steps = RecordingFile.readAllEvents(jfr).stream()
        .filter(e -> e.getEventType().getName().equals("ferry.ThrottleStep")).toList();
    assertThat(steps).as("the vCPUs were throttled (to 99%%), then released at switch-over").hasSize(2);
    assertThat(steps.get(0).getDouble("previousPercentage")).isZero();
    assertThat(steps.get(0).getDouble("percentage")).isEqualTo(0.99);
    assertThat(steps.get(0).getString("reason")).contains("throttle-trigger-threshold");
    assertThat(steps.get(1).getDouble("percentage")).isZero();
    assertThat(steps.get(1).getString("reason")).isEqualTo("switch-over: the guest stops");
  }
}
