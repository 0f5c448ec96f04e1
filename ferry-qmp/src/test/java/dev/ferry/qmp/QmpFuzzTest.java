package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzzes a QMP connection (framer, parser, request checks, dispatch to a fake backend): the bytes
 * go to the server over a fresh connection, then a newline and a probe command; unless the bytes
 * leave a message open, the probe must be answered on the same connection (it survived). Seeds:
 * {@code dev/ferry/qmp/QmpFuzzTestInputs/session/}.
 */
class QmpFuzzTest {
  private static final String PROBE = "{\"execute\": \"query-version\", \"id\": \"ferry-fuzz-probe\"}";
  private static QmpServer server;
  private static Path dir;

  private static synchronized QmpServer server() {
    if (server == null) {
      try {
        dir = Files.createTempDirectory("qmp-fuzz");
        server = QmpServer.start("unix:" + dir.resolve("m.qmp"), new FakeMonitorBackend());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return server;
  }

  @AfterAll
  static void stop() throws IOException {
    if (server != null) {
      server.close();
      server = null;
      Files.deleteIfExists(dir.resolve("m.qmp"));
      Files.deleteIfExists(dir);
    }
  }

  @FuzzTest(maxDuration = "2m")
  void session(byte[] data) throws IOException {
    // what the server's framer will hold after the input and a newline
    JsonFramer mirror = new JsonFramer(QmpSession.MAX_MESSAGE_BYTES, JsonFramer.sink(m -> {}, e -> {}));
    for (byte b : data) {
      mirror.feed(b);
    }
    mirror.feed((byte) '\n');
    try (RawQmpClient c = new RawQmpClient(server().uri())) {
      assertThat(c.next().has("QMP")).isTrue();
      ByteBuffer b = ByteBuffer.wrap(data);
      while (b.hasRemaining()) {
        c.ch.write(b);
      }
      if (mirror.hasPartial()) {
        return;
      }
      c.sendRaw("\n" + PROBE);
      while (true) {
        JsonNode r = c.next();
        if ("ferry-fuzz-probe".equals(r.path("id").asText(null))) {
          assertThat(r.has("return") || r.has("error")).as(r.toString()).isTrue();
          return;
        }
      }
    }
  }
}
