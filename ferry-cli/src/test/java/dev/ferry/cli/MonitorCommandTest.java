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

  record Script(int rc, String out) {}

  private Script script(String lines) throws Exception {
    try (QmpServer server = QmpServer.start("unix:" + tmp.resolve("m" + System.nanoTime() + ".qmp"), new TinyBackend());
        QmpClient client = QmpClient.connect(server.uri())) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
      int rc = MonitorCommand.scripted(client, new ByteArrayInputStream(lines.getBytes(StandardCharsets.UTF_8)), out);
      return new Script(rc, bytes.toString(StandardCharsets.UTF_8));
    }
  }

  @Test
  void scriptedConsoleRunsHmpLinesOverQmpWithoutPrintingEvents() throws Exception {
    Script s = script("info status\nstop\ninfo status\n");
    assertThat(s.rc()).isZero();
    // stop emits a STOP event; QEMU's HMP does not print events, neither does this console
    assertThat(s.out()).isEqualTo("VM status: running\nVM status: paused\n");
  }

  @Test
  void exitStatusIsNonZeroWhenACommandFailedAndZeroAfterQuit() throws Exception {
    Script bad = script("info status\nbogus\ninfo status\n");
    assertThat(bad.rc()).isEqualTo(1);
    assertThat(bad.out()).contains("unknown command: 'bogus'\n");
    assertThat(script("info status\nmigrate\n").rc()).isEqualTo(1); // a usage error
    assertThat(script("migrate tcp:127.0.0.1:1\n").rc()).isEqualTo(1); // Error: ...
    Script quit = script("info status\nquit\ninfo status\n");
    assertThat(quit.rc()).isZero();
    assertThat(quit.out()).isEqualTo("VM status: running\n"); // nothing after quit runs
    assertThat(script("q\n").rc()).isZero();
  }

  @Test
  void linesStartingWithABraceGoToQmpUnchanged() throws Exception {
    Script s = script("{\"execute\": \"query-status\", \"id\": \"x1\"}\n{\"execute\": \"nope\"}\n");
    assertThat(s.out().lines().toList()).hasSize(2);
    assertThat(s.out().lines().toList().get(0)).contains("\"return\"", "\"status\": \"running\"", "\"id\": \"x1\"");
    assertThat(s.out().lines().toList().get(1)).contains("\"error\"", "CommandNotFound", "The command nope has not been found");
    assertThat(s.rc()).isEqualTo(1);
    assertThat(script("{\"execute\": \"stop\"}\ninfo status\n").out()).endsWith("VM status: paused\n");
    assertThat(script("{not json\n").out()).startsWith("Error: not a JSON object");
  }

  @Test
  void aForgottenUnixPrefixAndAMissingSocketAreOneLine() {
    Cli.Run r = Cli.ferry("monitor", tmp.resolve("x.qmp").toString());
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().strip()).startsWith("ferry monitor: monitor URI must be unix:PATH or tcp:HOST:PORT")
        .contains("did you mean unix:" + tmp.resolve("x.qmp")).doesNotContain("\n").doesNotContain("Exception");
    Cli.Run gone = Cli.ferry("monitor", "unix:" + tmp.resolve("gone.qmp"));
    assertThat(gone.code()).isEqualTo(1);
    assertThat(gone.err().strip()).isEqualTo("ferry monitor: cannot reach the QMP monitor unix:" + tmp.resolve("gone.qmp")
        + ": No such file or directory");
  }

  @Test
  void monitorIsRegistered() {
    assertThat(FerryMain.execute("monitor", "--help")).isZero();
  }
}
