package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.qmp.QmpServer;
import dev.ferry.testing.ExactState;
import dev.ferry.transport.InheritedFds;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.Transports;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's own python QMP client ({@code qemu.qmp}, from {@code get-qemu-tools.sh}: set {@code
 * ORACLE_DIR} or leave it in {@code $TMPDIR/qemu-tools}) passes a socket to a Ferry source with
 * {@code send_fd_scm} + {@code getfd}, and migrates to {@code fd:NAME}; the destination equals the
 * source exactly. Skipped when the tools or python3 are not there.
 */
@Tag("slow")
@Timeout(180)
class PythonQmpFdPassingTest {
  private static final String SCRIPT = String.join("\n",
      "import sys",
      "sys.path.insert(0, sys.argv[1])",
      "from qemu.qmp.legacy import QEMUMonitorProtocol",
      "q = QEMUMonitorProtocol(sys.argv[2])",
      "q.connect()",
      "q.send_fd_scm(3)",
      "r = q.cmd_obj({'execute': 'getfd', 'arguments': {'fdname': 'pyfd'}})",
      "assert 'return' in r, r",
      "r = q.cmd_obj({'execute': 'migrate', 'arguments': {'uri': 'fd:pyfd'}})",
      "assert 'return' in r, r",
      "q.close()",
      "print('ok')",
      "");

  @TempDir Path dir;

  @Test
  void qemusPythonClientPassesTheMigrationSocket() throws Exception {
    String oracle = System.getenv().getOrDefault("ORACLE_DIR",
        System.getProperty("java.io.tmpdir") + "/qemu-tools");
    Path lib = Path.of(oracle, "python");
    assumeTrue(Files.isDirectory(lib.resolve("qemu/qmp")), "QEMU's python QMP client not found in " + lib);
    assumeTrue(Files.isExecutable(Path.of("/usr/bin/python3")), "no python3");
    Path script = dir.resolve("getfd.py");
    Files.writeString(script, SCRIPT);
    Path sock = dir.resolve("src.qmp");
    ProgramOptions opts = ProgramOptions.defaults().withPagesPerStep(64);
    try (MachineHost src = new MachineHost(Machine.builder().memory(8 << 20).program("stress").programOptions(opts).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(8 << 20).program("stress").programOptions(opts).build());
        QmpServer server = QmpServer.start("unix:" + sock, new EngineBackend(src, new SnapshotStore(dir, src)))) {
      src.machine().resume();
      int[] pair = InheritedFds.socketPair();
      CompletableFuture<Throwable> load = CompletableFuture.supplyAsync(() -> {
        try (MigrationChannel in = Transports.connect("fd:" + pair[1])) {
          dst.incoming(in);
          return null;
        } catch (Throwable t) {
          return t;
        }
      });
      Path log = dir.resolve("python.log");
      InheritedFds.ChildProcess py = InheritedFds.spawn(
          List.of("/usr/bin/python3", script.toString(), lib.toString(), sock.toString()), Map.of(3, pair[0]), log);
      InheritedFds.close(pair[0]);
      assertThat(py.awaitExit(60_000)).as(Files.readString(log)).isZero();
      assertThat(src.migration().outgoing().await(60, TimeUnit.SECONDS))
          .as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(load.get(60, TimeUnit.SECONDS)).isNull();
      ExactState.assertSame(src, dst);
    }
  }
}
