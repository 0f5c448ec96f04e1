package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpServer;
import dev.ferry.qmp.engine.EngineBackend;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.Incoming;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code ferry migrate --block} and {@code --block-incremental} against a source with a drive (QMP
 * {@code migrate blk=true [inc=true]}): the disk moves, the report (text and JSON) carries the disk
 * figures and the bulk rate, and the destination equals the stopped source exactly.
 */
@Timeout(120)
class MigrateBlockTest {
  private static final int MIB = 1 << 20;
  @TempDir Path tmp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"--block", "--block-incremental"})
  void migrateMovesTheDiskAndReportsItsFigures(String option) throws Exception {
    try (MachineHost src = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", tmp.resolve("s.raw"), 6 * MIB + MIB / 2).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", tmp.resolve("t.raw"), 6 * MIB + MIB / 2).build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("s.qmp"), new EngineBackend(src, new SnapshotStore(tmp, src)))) {
      var drive = src.machine().drives().getFirst();
      for (int c : new int[] {0, 3, 6}) { // 3 of 7 chunks hold data, the last one the half chunk
        drive.write((long) c * MIB + 4096, ByteBuffer.wrap(("chunk " + c).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
      }
      Incoming incoming = Incoming.listen(dst, "unix:" + tmp.resolve("mig.sock"));
      Cli.Run json = Cli.ferry("migrate", "--qmp", server.uri(), option, "--quiet", "--json", incoming.uri());
      assertThat(json.code()).as(json.err()).isZero();
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      JsonNode report = new ObjectMapper().readTree(json.out());
      JsonNode disk = report.path("disk");
      assertThat(disk.path("total-bytes").asLong()).isEqualTo(6L * MIB + MIB / 2);
      assertThat(disk.path("remaining-bytes").asLong()).isZero();
      assertThat(disk.path("transferred-bytes").asLong()).isEqualTo(option.equals("--block") ? 7L * MIB : 3L * MIB);
      assertThat(disk.path("bulk-bytes-per-sec").asLong()).isPositive();
      assertThat(disk.path("bulk-time-ms").isNumber()).isTrue();
      ExactState.assertSame(src, dst);
    }
  }

  @Test
  void theTextReportHasTheDiskRowsAndAMigrationWithoutDisksHasNone() throws Exception {
    try (MachineHost src = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", tmp.resolve("s.raw"), 2 * MIB).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", tmp.resolve("t.raw"), 2 * MIB).build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("s.qmp"), new EngineBackend(src, new SnapshotStore(tmp, src)))) {
      Incoming incoming = Incoming.listen(dst, "unix:" + tmp.resolve("mig.sock"));
      Cli.Run text = Cli.ferry("migrate", "--qmp", server.uri(), "--block", "--quiet", incoming.uri());
      assertThat(text.code()).as(text.err()).isZero();
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(text.out()).containsPattern("(?m)^  disk +2 MiB +of 2 MiB in all disks, 0 B remaining$")
          .containsPattern("(?m)^  disk bulk +.*/s +2 MiB in ");
      ExactState.assertSame(src, dst);
    }
    try (MachineHost src = new MachineHost(Machine.builder().memory(4 << 20).program("idle").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(4 << 20).program("idle").build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("n.qmp"), new EngineBackend(src, new SnapshotStore(tmp, src)))) {
      Incoming incoming = Incoming.listen(dst, "unix:" + tmp.resolve("mig2.sock"));
      Cli.Run json = Cli.ferry("migrate", "--qmp", server.uri(), "--quiet", "--json", incoming.uri());
      assertThat(json.code()).as(json.err()).isZero();
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(new ObjectMapper().readTree(json.out()).get("disk").isNull()).isTrue();
      ExactState.assertSame(src, dst);
    }
  }
}
