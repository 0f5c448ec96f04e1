package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testing.TestPki;
import java.io.IOException;
import java.net.InetAddress;
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
}
