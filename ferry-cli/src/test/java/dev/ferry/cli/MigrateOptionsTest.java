package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpServer;
import dev.ferry.qmp.engine.EngineBackend;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry migrate}'s options change the source for good and say so; {@code --reset} restores the defaults. */
class MigrateOptionsTest {
  @TempDir Path tmp;

  private static String setUp(QmpClient c, String... args) throws Exception {
    MigrateCommand m = new MigrateCommand();
    new picocli.CommandLine(m).parseArgs(args);
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    m.setUp(c, new PrintStream(err, true, StandardCharsets.UTF_8));
    return err.toString(StandardCharsets.UTF_8);
  }

  private static boolean capability(QmpClient c, String name) throws Exception {
    for (JsonNode n : c.execute("query-migrate-capabilities")) {
      if (n.path("capability").asText().equals(name)) {
        return n.path("state").asBoolean();
      }
    }
    throw new AssertionError("no capability " + name);
  }

  @Test
  void optionsPersistAndSaySoResetRestoresTheDefaults() throws Exception {
    try (MachineHost host = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("m.qmp"), new EngineBackend(host, new SnapshotStore(tmp, host)));
        QmpClient c = QmpClient.connect(server.uri())) {
      String said = setUp(c, "--qmp", server.uri(), "--xbzrle", "--bandwidth", "64M/s", "--downtime-limit", "50", "tcp:127.0.0.1:1");
      assertThat(said.lines().toList()).containsExactly("ferry migrate: set on the source, and kept for later migrations as in QEMU"
          + " (--reset restores the defaults): xbzrle=on, max-bandwidth=64 MiB/s, downtime-limit=50 ms");
      assertThat(capability(c, "xbzrle")).isTrue();
      assertThat(c.execute("query-migrate-parameters").path("max-bandwidth").asLong()).isEqualTo(64L << 20);

      // a later migrate without options keeps them, as QEMU does, and says nothing
      assertThat(setUp(c, "--qmp", server.uri(), "tcp:127.0.0.1:1")).isEmpty();
      assertThat(capability(c, "xbzrle")).isTrue();

      String reset = setUp(c, "--qmp", server.uri(), "--reset", "--return-path", "tcp:127.0.0.1:1");
      assertThat(reset).startsWith("ferry migrate: --reset: every capability off, every parameter at its default on the source\n")
          .contains("return-path=on");
      assertThat(capability(c, "xbzrle")).isFalse();
      assertThat(capability(c, "return-path")).isTrue();
      JsonNode p = c.execute("query-migrate-parameters");
      assertThat(p.path("max-bandwidth").asLong()).isEqualTo(dev.ferry.migration.MigrationParameters.DEFAULT.maxBandwidthBytesPerSec());
      assertThat(p.path("downtime-limit").asLong()).isEqualTo(300);
    }
  }

  @Test
  void postcopySaysSoAndTurnsPostcopyRamOn() throws Exception {
    try (MachineHost host = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("p.qmp"), new EngineBackend(host, new SnapshotStore(tmp, host)));
        QmpClient c = QmpClient.connect(server.uri())) {
      String said = setUp(c, "--qmp", server.uri(), "--postcopy", "--postcopy-after", "2", "tcp:127.0.0.1:1");
      assertThat(said.lines().toList()).containsExactly("ferry migrate: set on the source, and kept for later migrations as in QEMU"
          + " (--reset restores the defaults): postcopy-ram=on, ferry-auto-postcopy=on");
      assertThat(capability(c, "postcopy-ram")).isTrue();
      assertThat(capability(c, "ferry-auto-postcopy")).as("on by default with --postcopy").isTrue();
    }
  }

  @Test
  void autoConvergeTurnsTheCapabilityOn() throws Exception {
    try (MachineHost host = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build());
        QmpServer server = QmpServer.start("unix:" + tmp.resolve("a.qmp"), new EngineBackend(host, new SnapshotStore(tmp, host)));
        QmpClient c = QmpClient.connect(server.uri())) {
      String said = setUp(c, "--qmp", server.uri(), "--auto-converge", "tcp:127.0.0.1:1");
      assertThat(said).endsWith(": auto-converge=on\n");
      assertThat(capability(c, "auto-converge")).isTrue();
      assertThat(capability(c, "ferry-auto-postcopy")).isFalse();
    }
  }
}
