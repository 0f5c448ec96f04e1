package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.hmp.Hmp;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The monitor's disk commands on a machine with drives: {@code info disk-check} (QMP {@code
 * ferry-disk-check}) passing and failing, {@code migrate -b} refused next to the {@code block}
 * capability, snapshots refused with it, and {@code info migrate}'s disk lines after a block
 * migration into a file.
 */
@Timeout(60)
class DiskCommandsTest {
  @TempDir Path tmp;

  private MachineHost host() {
    return new MachineHost(
        Machine.builder()
            .memory(4L << 20)
            .program("disk")
            .programOptions(ProgramOptions.defaults().withDirtyRateBytesPerSec(64L << 20))
            .drive("drive0", tmp.resolve("d0.raw"), 3L << 20)
            .build());
  }

  @Test
  void diskCheckPassesThenCatchesAStaleRecord() throws Exception {
    try (MachineHost host = host()) {
      Hmp hmp = new QmpDispatcher(new EngineBackend(host, new SnapshotStore(tmp, host))).hmp();
      host.machine().resume();
      long end = System.nanoTime() + 20_000_000_000L;
      while (host.machine().cpu(0).reg(2) < 2 && System.nanoTime() < end) {
        Thread.sleep(10);
      }
      assertThat(hmp.execute("info disk-check")).matches("disk check: passed, 3 records verified\n");
      host.machine().pause();
      // an older record put back where a newer one was (a lost write)
      ByteBuffer rec = ByteBuffer.allocate(dev.ferry.block.DiskCheck.RECORD_BYTES);
      dev.ferry.block.DiskCheck.fill(rec, 0, 1, 1);
      host.machine().drives().getFirst().write(1L << 20, rec);
      assertThat(hmp.execute("info disk-check")).startsWith("disk check: FAILED").contains("chunk 1", "stale record");
    }
  }

  @Test
  void blockArgumentsAndSnapshotsNextToTheBlockCapability() throws Exception {
    try (MachineHost host = host()) {
      Hmp hmp = new QmpDispatcher(new EngineBackend(host, new SnapshotStore(tmp, host))).hmp();
      assertThat(hmp.execute("migrate_set_capability block on")).isEmpty();
      assertThat(hmp.execute("migrate -d -b file:" + tmp.resolve("x.mig")))
          .isEqualTo("Error: Command options are incompatible with current migration capabilities\n");
      assertThat(hmp.execute("savevm s1")).contains("Block migration and snapshots are incompatible");
      assertThat(hmp.execute("migrate_set_capability block off")).isEmpty();
      // migrate -b into a file: the block section goes along, and info migrate shows the disk lines
      assertThat(hmp.execute("migrate -b file:" + tmp.resolve("b.mig"))).isEmpty();
      String info = hmp.execute("info migrate");
      assertThat(info).contains("Migration status: completed", "transferred disk: 3072 kbytes", "remaining disk: 0 kbytes",
          "total disk: 3072 kbytes");
    }
  }
}
