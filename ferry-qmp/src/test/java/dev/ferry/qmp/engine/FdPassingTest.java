package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.qmp.QmpServer;
import dev.ferry.testing.ExactState;
import dev.ferry.transport.InheritedFds;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.MigrationFds;
import dev.ferry.transport.Transports;
import dev.ferry.transport.UnixFdSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8 item 7: {@code fd:} takes only descriptors given for migration. A real client passes a
 * socket over the unix monitor with SCM_RIGHTS ({@code getfd}), the source migrates to {@code
 * fd:NAME}, and the destination equals the source exactly; a bare number (e.g. the monitor's own
 * connection) is refused.
 */
@Timeout(120)
class FdPassingTest {
  private static final ObjectMapper M = new ObjectMapper();

  @TempDir Path dir;

  /** A QMP client over {@link UnixFdSocket}, which can send a descriptor with a command. */
  static final class FdClient implements AutoCloseable {
    final UnixFdSocket s;
    final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    FdClient(Path sock) throws IOException {
      s = UnixFdSocket.connect(sock);
      next(); // greeting
      assertThat(cmd("{\"execute\":\"qmp_capabilities\"}", -1).toString()).isEqualTo("{\"return\":{}}");
    }

    JsonNode next() throws IOException {
      while (true) {
        byte[] b = pending.toByteArray();
        for (int i = 0; i < b.length; i++) {
          if (b[i] == '\n') {
            pending.reset();
            pending.write(b, i + 1, b.length - i - 1);
            return M.readTree(new String(b, 0, i, StandardCharsets.UTF_8));
          }
        }
        ByteBuffer buf = ByteBuffer.allocate(4096);
        if (s.read(buf) < 0) {
          throw new IOException("monitor closed");
        }
        pending.write(buf.array(), 0, buf.position());
      }
    }

    /** Sends {@code json} (with {@code fd} as SCM_RIGHTS when >= 0); the reply, events skipped. */
    JsonNode cmd(String json, int fd) throws IOException {
      ByteBuffer b = ByteBuffer.wrap((json + "\n").getBytes(StandardCharsets.UTF_8));
      s.send(b, fd);
      while (b.hasRemaining()) {
        s.write(b);
      }
      JsonNode n;
      do {
        n = next();
      } while (n.has("event"));
      return n;
    }

    @Override
    public void close() {
      s.close();
    }
  }

  static MachineHost host() {
    return new MachineHost(Machine.builder().memory(4 << 20).program("stress")
        .programOptions(ProgramOptions.defaults().withPagesPerStep(64)).build());
  }

  @Test
  void aSocketPassedWithGetfdCarriesAMigrationThatArrivesExactly() throws Exception {
    Path sock = dir.resolve("src.qmp");
    try (MachineHost src = host();
        MachineHost dst = host();
        QmpServer server = QmpServer.start("unix:" + sock, new EngineBackend(src, new SnapshotStore(dir, src)));
        FdClient c = new FdClient(sock)) {
      src.machine().resume();
      int[] pair = InheritedFds.socketPair();
      assertThat(c.cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"migfd\"}}", pair[0]).toString())
          .isEqualTo("{\"return\":{}}");
      InheritedFds.close(pair[0]); // the monitor holds its own copy now
      assertThat(MigrationFds.hasNamed("migfd")).isTrue();

      CompletableFuture<Throwable> load = CompletableFuture.supplyAsync(() -> {
        try (MigrationChannel in = Transports.connect("fd:" + pair[1])) {
          dst.incoming(in);
          return null;
        } catch (Throwable t) {
          return t;
        }
      });
      assertThat(c.cmd("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:migfd\"}}", -1).toString())
          .isEqualTo("{\"return\":{}}");
      assertThat(src.migration().outgoing().await(60, TimeUnit.SECONDS))
          .as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(load.get(60, TimeUnit.SECONDS)).isNull();
      ExactState.assertSame(src, dst);

      // the name was used up: a second migrate finds nothing
      assertThat(MigrationFds.hasNamed("migfd")).isFalse();
      c.cmd("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:migfd\"}}", -1);
      assertThat(src.migration().outgoing().await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc())
          .isEqualTo("fd:migfd: File descriptor named 'migfd' has not been found");
    }
  }

  @Test
  void getfdAndClosefdSpeakQemusWords() throws Exception {
    Path sock = dir.resolve("m.qmp");
    try (MachineHost h = host();
        QmpServer server = QmpServer.start("unix:" + sock, new EngineBackend(h, new SnapshotStore(dir, h)));
        FdClient c = new FdClient(sock)) {
      assertThat(c.cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"x\"}}", -1).path("error").path("desc").asText())
          .isEqualTo("No file descriptor supplied via SCM_RIGHTS");
      int[] pipe = InheritedFds.pipe();
      assertThat(c.cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"9lives\"}}", pipe[1]).path("error").path("desc").asText())
          .isEqualTo("Parameter 'fdname' expects a name not starting with a digit");
      assertThat(c.cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"w\"}}", pipe[1]).toString()).isEqualTo("{\"return\":{}}");
      InheritedFds.close(pipe[1]);
      assertThat(c.cmd("{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"w\"}}", -1).toString()).isEqualTo("{\"return\":{}}");
      // the monitor's copy of the write end is closed: the read end sees the end of the pipe
      try (MigrationChannel r = Transports.connect("fd:" + pipe[0])) {
        assertThat(r.read(ByteBuffer.allocate(1))).isEqualTo(-1);
      }
      assertThat(c.cmd("{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"w\"}}", -1).path("error").path("desc").asText())
          .isEqualTo("File descriptor named 'w' not found");
    }
  }

  @Test
  void aBareDescriptorNumberIsRefusedNotWrittenTo() throws Exception {
    Path sock = dir.resolve("n.qmp");
    try (MachineHost h = host();
        QmpServer server = QmpServer.start("unix:" + sock, new EngineBackend(h, new SnapshotStore(dir, h)));
        FdClient c = new FdClient(sock)) {
      h.machine().resume();
      // every socket of this process, the monitor's connections among them: none was given for migration
      int tried = 0;
      try (var fds = Files.list(Path.of("/proc/self/fd"))) {
        for (Path p : fds.toList()) {
          String target;
          try {
            target = Files.readSymbolicLink(p).toString();
          } catch (IOException e) {
            continue;
          }
          if (!target.startsWith("socket:")) {
            continue;
          }
          String n = p.getFileName().toString();
          c.cmd("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:" + n + "\"}}", -1);
          assertThat(h.migration().outgoing().await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
          assertThat(h.migration().outgoingState().errorDesc())
              .startsWith("fd:" + n + ": descriptor " + n + " was not given to this process for migration");
          tried++;
        }
      }
      assertThat(tried).isPositive();
      // and the monitor still answers: nothing was written into its connection
      assertThat(c.cmd("{\"execute\":\"query-status\"}", -1).path("return").path("status").asText()).isEqualTo("running");
    }
  }

  @Test
  void aDescriptorSentAheadOfGetfdWithABlankAsQemusPythonClientDoesIsTaken() throws Exception {
    Path sock = dir.resolve("py.qmp");
    try (MachineHost h = host();
        QmpServer server = QmpServer.start("unix:" + sock, new EngineBackend(h, new SnapshotStore(dir, h)));
        FdClient c = new FdClient(sock)) {
      // qemu.qmp's send_fd_scm: one blank byte carrying the descriptor, then the getfd command
      int[] pipe = InheritedFds.pipe();
      ByteBuffer blank = ByteBuffer.wrap(new byte[] {' '});
      c.s.send(blank, pipe[1]);
      InheritedFds.close(pipe[1]);
      assertThat(c.cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"py\"}}", -1).toString())
          .isEqualTo("{\"return\":{}}");
      assertThat(MigrationFds.hasNamed("py")).isTrue();
      assertThat(c.cmd("{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"py\"}}", -1).toString())
          .isEqualTo("{\"return\":{}}");
      InheritedFds.close(pipe[0]);
    }
  }
}
