package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.testing.Incoming;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A JFR recording of a real in-process live migration holds Ferry's events. */
class MigrationEventsTest {
  @TempDir Path dir;

  @Test
  void aRecordingOfALiveMigrationShowsPhasesPassesAndTheSwitchOver() throws Exception {
    Path jfr = dir.resolve("m.jfr");
    try (Recording rec = new Recording()) {
      for (String e : List.of("ferry.MigrationPhase", "ferry.MigrationPass", "ferry.SwitchOver", "ferry.ThrottleStep", "ferry.PostcopyFault")) {
        rec.enable(e);
      }
      rec.start();
      try (MachineHost src = new MachineHost(Machine.builder().memory(16L << 20).program("stress").build());
          MachineHost dst = new MachineHost(Machine.builder().memory(16L << 20).program("stress").build())) {
        src.machine().resume();
        String uri = "unix:" + dir.resolve("mig.sock");
        Incoming incoming = Incoming.listen(dst, uri);
        src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
        OutgoingMigration out = src.migration().migrate(uri);
        assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
        incoming.await(60, TimeUnit.SECONDS);
        dst.startAfterLoad(true); // loaded, left paused: its guest has not run
        // exact: the stopped source equals the loaded destination before its guest runs
        MemoryDigest s = src.memoryDigest();
        MemoryDigest d = dst.memoryDigest();
        assertThat(d.firstDifference(s)).isEmpty();
        assertThat(d.matches(s)).isTrue();
      }
      rec.stop();
      rec.dump(jfr);
    }
    List<RecordedEvent> events = RecordingFile.readAllEvents(jfr);
    List<String> outgoingPhases = events.stream()
        .filter(e -> e.getEventType().getName().equals("ferry.MigrationPhase") && e.getString("side").equals("outgoing"))
        .map(e -> e.getString("phase")).toList();
    assertThat(outgoingPhases).contains("setup", "active", "device", "completed");
    RecordedEvent active = events.stream()
        .filter(e -> e.getEventType().getName().equals("ferry.MigrationPhase") && "active".equals(e.getString("phase"))
            && e.getString("side").equals("outgoing"))
        .findFirst().orElseThrow();
    assertThat(active.getString("nextPhase")).isEqualTo("device");
    assertThat(active.getDuration().isNegative()).isFalse();
    assertThat(events.stream().filter(e -> e.getEventType().getName().equals("ferry.MigrationPhase"))
        .map(e -> e.getString("side"))).contains("incoming");
    List<RecordedEvent> passes = events.stream().filter(e -> e.getEventType().getName().equals("ferry.MigrationPass")).toList();
    assertThat(passes).isNotEmpty();
    assertThat(passes.getFirst().getLong("pass")).isPositive();
    List<RecordedEvent> switchOvers = events.stream().filter(e -> e.getEventType().getName().equals("ferry.SwitchOver")).toList();
    assertThat(switchOvers).hasSize(1);
    assertThat(switchOvers.getFirst().getBoolean("completed")).isTrue();
    assertThat(switchOvers.getFirst().getLong("downtimeBytes")).isPositive();
  }

  @Test
  void throttleAndPostcopyEventsAreDefined() throws Exception {
    // ThrottleStep is emitted by auto-converge (AutoConvergeTest); both must at least register and commit
    Path jfr = dir.resolve("t.jfr");
    try (Recording rec = new Recording()) {
      rec.enable("ferry.ThrottleStep");
      rec.enable("ferry.PostcopyFault");
      rec.start();
      MigrationEvents.ThrottleStep t = new MigrationEvents.ThrottleStep();
      t.previousPercentage = 0.2;
      t.percentage = 0.3;
      t.reason = "test";
      t.commit();
      MigrationEvents.PostcopyFault f = new MigrationEvents.PostcopyFault();
      f.begin();
      f.block = "ram";
      f.offset = 4096;
      f.end();
      f.commit();
      rec.stop();
      rec.dump(jfr);
    }
    assertThat(RecordingFile.readAllEvents(jfr).stream().map(e -> e.getEventType().getName()))
        .contains("ferry.ThrottleStep", "ferry.PostcopyFault");
  }
}
