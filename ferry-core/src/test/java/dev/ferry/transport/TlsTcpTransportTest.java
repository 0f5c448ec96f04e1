package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testing.TestPki;
import java.io.IOException;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transport conformance suite with TLS 1.3 over tcp: bulk and one-byte-at-a-time streams, the
 * return path while the stream flows (wrap and unwrap from two threads), a peer gone mid-stream,
 * shutdown of a blocked reader and writer.
 */
class TlsTcpTransportTest extends BaseTransportTestCase {
  @TempDir static Path pkiRoot;
  static TlsCredentials server;
  static TlsCredentials client;

  @BeforeAll
  static void credentials() throws IOException {
    TestPki pki = TestPki.create("Ferry Test CA");
    server = TlsCredentials.load("s", pki.serverDir(pkiRoot.resolve("s")), TlsCredentials.Endpoint.SERVER, true);
    client = TlsCredentials.load("c", pki.clientDir(pkiRoot.resolve("c")), TlsCredentials.Endpoint.CLIENT, true);
  }

  @Override
  protected String listenUri() {
    return "tcp:127.0.0.1:0";
  }

  @Override
  protected boolean supportsReturnPath() {
    return true;
  }

  @Override
  protected String unreachableConnectUri() throws IOException {
    return "tcp:127.0.0.1:" + TcpV4TransportTest.closedPort(InetAddress.getByName("127.0.0.1"));
  }

  @Override
  protected MigrationChannel connect(String uri) throws IOException {
    return TlsChannel.client(Transports.connect(uri), client, "127.0.0.1");
  }

  @Override
  protected MigrationChannel accept(TransportListener l) throws IOException {
    return TlsChannel.server(l.accept(), server, null);
  }

  @Test
  void negotiatesTls13WithMutualAuthentication() throws Exception {
    Results<String, String> r =
        exchange(
            ch -> ((TlsChannel) ch).protocol() + " " + ((TlsChannel) ch).cipherSuite() + " " + ((TlsChannel) ch).peerIdentity(),
            ch -> ((TlsChannel) ch).peerIdentity());
    assertThat(r.sent()).startsWith("TLSv1.3 TLS_AES_").endsWith("CN=localhost,O=Ferry tests");
    assertThat(r.received()).isEqualTo(TestPki.CLIENT_DN);
  }

  /**
   * A plain client (a QEMU stream's first bytes) gets a TLS fatal alert record before the server
   * closes: the evidence a plain source reads to say that the destination requires TLS.
   */
  @Test
  void plainClientIsAnsweredWithATlsAlert() throws Exception {
    try (TransportListener l = Transports.listen("tcp:127.0.0.1:0")) {
      CompletableFuture<Throwable> refused = new CompletableFuture<>();
      Thread.ofPlatform().daemon().start(() -> {
        try {
          accept(l).close();
          refused.complete(null);
        } catch (Throwable t) {
          refused.complete(t);
        }
      });
      ByteArrayOutputStream answer = new ByteArrayOutputStream();
      try (MigrationChannel c = Transports.connect(l.boundUri().text())) {
        c.write(ByteBuffer.wrap("QEVM\0\0\0\3".getBytes(StandardCharsets.US_ASCII)));
        ByteBuffer b = ByteBuffer.allocate(64);
        try {
          while (c.read(b.clear()) >= 0) {
            answer.write(b.array(), 0, b.position());
          }
        } catch (IOException reset) {
          // the server closes with our bytes unread: a reset may follow the alert
        }
      }
      assertThat(refused.get(30, TimeUnit.SECONDS))
          .isInstanceOf(TlsHandshakeException.class)
          .hasMessageContaining("does not speak TLS (it sent a plain migration stream, 'QEVM')");
      // one alert record (type 21, record version 3.3, length 2), fatal (2); JSSE picks the
      // description (internal_error, 80, in JDK 25)
      assertThat(HexFormat.of().formatHex(answer.toByteArray())).hasSize(14).startsWith("150303000202");
    }
  }
}
