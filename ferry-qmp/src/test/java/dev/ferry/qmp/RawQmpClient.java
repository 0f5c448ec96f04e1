package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A client that knows nothing of Ferry: raw bytes out, lines in, each line parsed on its own as one
 * complete JSON object, exactly as an external tool (socat, a Python script) sees the monitor.
 */
final class RawQmpClient implements AutoCloseable {
  static final ObjectMapper M = new ObjectMapper();
  final SocketChannel ch;
  final BufferedReader in;

  RawQmpClient(String uri) throws IOException {
    if (uri.startsWith("unix:")) {
      ch = SocketChannel.open(StandardProtocolFamily.UNIX);
      ch.connect(UnixDomainSocketAddress.of(Path.of(uri.substring(5))));
    } else {
      String[] hp = uri.substring(4).split(":");
      ch = SocketChannel.open(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])));
    }
    in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
  }

  void sendRaw(String s) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /** The next line, which must be one whole JSON object. */
  JsonNode next() throws IOException {
    String line = in.readLine();
    assertThat(line).as("connection closed").isNotNull();
    JsonNode n = M.readTree(line);
    assertThat(n.isObject()).as(line).isTrue();
    return n;
  }

  /** The next non-event message (events before it are skipped). */
  JsonNode reply() throws IOException {
    while (true) {
      JsonNode n = next();
      if (!n.has("event")) {
        return n;
      }
    }
  }

  JsonNode greetingAndNegotiate() throws IOException {
    JsonNode g = next();
    sendRaw("{\"execute\": \"qmp_capabilities\"}\n");
    assertThat(reply().toString()).isEqualTo("{\"return\":{}}");
    return g;
  }

  JsonNode cmd(String json) throws IOException {
    sendRaw(json + "\n");
    return reply();
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }
}
