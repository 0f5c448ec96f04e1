package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.qmp.MonitorBackend;
import dev.ferry.qmp.MonitorEventSink;
import dev.ferry.qmp.MonitorEvent;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.QmpServer;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.machine.RunState;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MonitorCommandTest {
  @TempDir Path tmp;

  /** Just enough backend for the console: run state, stop/cont with events. */
  static final class TinyBackend implements MonitorBackend {
    volatile RunState state = RunState.RUNNING;
    volatile MonitorEventSink sink;

    @Override
    public void attach(MonitorEventSink events) {
      sink = events;
    }

    @Override
    public StatusInfo queryStatus() {
      return StatusInfo.of(state);
    }

    @Override
    public void stop() {
      state = RunState.PAUSED;
      sink.emit(new MonitorEvent.Stop());
    }

    @Override
    public void cont() {
      state = RunState.RUNNING;
    }

    @Override
    public void quit() {}

    @Override
    public void migrate(String uri, boolean detach, boolean resume) throws QmpError {
      throw QmpError.generic("not in this test");
    }

    @Override
    public void migrateIncoming(String uri) throws QmpError {
      throw QmpError.generic("not in this test");
    }

    @Override
    public void migrateCancel() {}

    @Override
    public void migrateStartPostcopy() throws QmpError {
      throw QmpError.generic("not in this test");
    }

    @Override
    public MigrationInfo queryMigrate() {
      return MigrationInfo.NONE;
    }

    @Override
    public List<MigrationCapabilityStatus> queryMigrateCapabilities() {
      return List.of();
    }

    @Override
    public void setMigrateCapabilities(List<MigrationCapabilityStatus> c) {}

    @Override
    public MigrationParameters queryMigrateParameters() {
      return MigrationParameters.empty();
    }

    @Override
    public void setMigrateParameters(MigrationParameters changes) {}

    @Override
    public void snapshotSave(String name) {}

    @Override
    public void snapshotLoad(String name) {}

    @Override
    public void snapshotDelete(String name) {}

    @Override
    public List<SnapshotInfo> querySnapshots() {
      return List.of();
    }
  }

  @Test
  void scriptedConsoleRunsHmpLinesOverQmp() throws Exception {
    try (QmpServer server = QmpServer.start("unix:" + tmp.resolve("m.qmp"), new TinyBackend());
        QmpClient client = QmpClient.connect(server.uri())) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
      String script = "info status\nstop\ninfo status\nbogus\n";
      int rc =
          MonitorCommand.scripted(
              client, new ByteArrayInputStream(script.getBytes(StandardCharsets.UTF_8)), out);
      assertThat(rc).isZero();
      String text = bytes.toString(StandardCharsets.UTF_8);
      assertThat(text)
          .contains("VM status: running\n", "VM status: paused\n", "unknown command: 'bogus'\n");
    }
  }

  @Test
  void monitorIsRegistered() {
    assertThat(FerryMain.execute("monitor", "--help")).isZero();
  }
}
