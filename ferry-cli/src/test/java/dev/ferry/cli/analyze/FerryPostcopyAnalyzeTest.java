package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.ReturnPathMessage;
import dev.ferry.stream.SectionType;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ferry's own postcopy stream, recorded on the wire by a proxy between two in-process machines,
 * decoded by {@code ferry analyze} in QEMU 7.2's order: OPEN_RETURN_PATH, PING, POSTCOPY_ADVISE,
 * RAM, discards, PING, PACKAGED [LISTEN, device sections, PING, RUN], PING, postcopy RAM, EOF, no
 * vmdesc; and its return path.
 */
@Timeout(120)
class FerryPostcopyAnalyzeTest {
  @TempDir Path tmp;

  /** Own threads: the common pool may have one worker on a 2-core machine, and these tasks block. */
  static final java.util.concurrent.Executor THREADS = r -> Thread.ofPlatform().daemon().start(r);

  /** Forwards one connection both ways and keeps every byte of each direction. */
  static final class RecordingProxy implements AutoCloseable {
    final ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    final ByteArrayOutputStream c2s = new ByteArrayOutputStream();
    final ByteArrayOutputStream s2c = new ByteArrayOutputStream();
    final CompletableFuture<Void> done;

    RecordingProxy(int targetPort) throws IOException {
      done = CompletableFuture.runAsync(() -> {
        try (Socket src = server.accept();
            Socket dst = new Socket(InetAddress.getLoopbackAddress(), targetPort)) {
          CompletableFuture<Void> back = CompletableFuture.runAsync(() -> pump(dst, src, s2c), THREADS);
          pump(src, dst, c2s);
          back.get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      }, THREADS);
    }

    private static void pump(Socket from, Socket to, ByteArrayOutputStream record) {
      byte[] buf = new byte[1 << 16];
      try {
        InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream();
        int n;
        while ((n = in.read(buf)) > 0) {
          synchronized (record) {
            record.write(buf, 0, n);
          }
          out.write(buf, 0, n);
          out.flush();
        }
        to.shutdownOutput();
      } catch (IOException e) {
        // a side closed: the recording ends here
      }
    }

    int port() {
      return server.getLocalPort();
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }

  static MachineHost host() {
    return new MachineHost(Machine.builder().memory(32 << 20).program("stress").serial(new ByteArrayOutputStream()).build());
  }

  @Test
  void ferrysPostcopyStreamDecodesInQemusOrder() throws Exception {
    byte[] stream;
    byte[] returnPath;
    try (MachineHost src = host();
        MachineHost dst = host()) {
      src.machine().resume();
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      src.migration().setParameters(Map.of("max-bandwidth", 4L << 20, "downtime-limit", 1L));
      Incoming incoming = Incoming.listen(dst, "tcp:127.0.0.1:0", THREADS);
      String b = incoming.uri();
      try (RecordingProxy proxy = new RecordingProxy(Integer.parseInt(b.substring(b.lastIndexOf(':') + 1)))) {
        OutgoingMigration out = src.migration().migrate("tcp:127.0.0.1:" + proxy.port());
        src.migration().startPostcopy();
        assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
        incoming.await(60, TimeUnit.SECONDS);
        proxy.done.get(60, TimeUnit.SECONDS);
        stream = proxy.c2s.toByteArray();
        returnPath = proxy.s2c.toByteArray();
      }
    }
    boolean config = stream[8] == SectionType.CONFIGURATION.code();
    try (StreamAnalyzer a = new StreamAnalyzer(null, stream.length, true, 1L << 30)) {
      a.analyze(MigrationInput.of(stream), StreamReader.Options.DEFAULT.withConfiguration(config));
      List<String> names = a.commands().stream().map(c -> c.command().name())
          .filter(n -> !n.equals("POSTCOPY_RAM_DISCARD")).toList();
      assertThat(names).containsExactly(
          "OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE", "PING", "PACKAGED", "POSTCOPY_LISTEN", "PING", "POSTCOPY_RUN", "PING");
      assertThat(a.commands().stream().filter(c -> c instanceof StreamCommand.RamDiscard)).isNotEmpty();
      assertThat(a.discards()).isNotEmpty();
      assertThat(a.packages()).hasSize(1);
      StreamAnalyzer.Package p = a.packages().get(0);
      assertThat(p.commands().get(0)).isEqualTo("POSTCOPY_LISTEN");
      assertThat(p.commands().get(p.commands().size() - 1)).isEqualTo("POSTCOPY_RUN");
      assertThat(p.sections()).isNotEmpty();
      assertThat(a.postcopyRan()).isTrue();
      assertThat(a.postcopyPages()).isNotEmpty();
      assertThat(a.postcopyDuplicates()).isZero(); // no page sent twice after the switch
      assertThat(a.cut()).isNull();
      assertThat(a.eofOffset()).isEqualTo(stream.length - 1); // EOF last, no vmdesc
      assertThat(a.vmdescOffset()).isEqualTo(-1);
    }
    List<ReturnPathDecoder.Message> rp = ReturnPathDecoder.decode(returnPath);
    assertThat(rp.stream().map(ReturnPathDecoder.Message::type)).contains(ReturnPathMessage.PONG);
    // and the command line prints both
    Path f = tmp.resolve("ferry-postcopy.mig");
    Path r = tmp.resolve("ferry-postcopy.rp");
    Files.write(f, stream);
    Files.write(r, returnPath);
    AnalyzeCommandTest.Run run = AnalyzeCommandTest.ferry("analyze", f.toString(), "--return-path", r.toString());
    assertThat(run.exit()).as(run.err()).isZero();
    assertThat(run.out()).contains("COMMAND    POSTCOPY_RUN", "postcopy RAM after RUN: ", "EOF at " + (stream.length - 1) + ", no vmdesc",
        "return path " + r + ": " + rp.size() + " messages");
  }
}
