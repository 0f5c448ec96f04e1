package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.testing.TestPki;
import dev.ferry.transport.Authz;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.TlsHandshakeException;
import dev.ferry.transport.TlsObjects;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The monitor inside TLS (issue 14, item 2), and where a monitor without TLS may listen. */
@Timeout(60)
class MonitorTlsTest {
  @TempDir static Path pkiRoot;
  static TestPki pki;
  static TlsCredentials client;
  static Path serverDir;

  final TlsObjects objects = new TlsObjects();
  final BlockingQueue<String> refused = new LinkedBlockingQueue<>();
  QmpServer server;

  @BeforeAll
  static void certificates() throws IOException {
    pki = TestPki.create("Ferry Test CA");
    serverDir = pki.serverDir(pkiRoot.resolve("s"));
    client = TlsCredentials.load("c", pki.clientDir(pkiRoot.resolve("c")), TlsCredentials.Endpoint.CLIENT, true);
  }

  @AfterEach
  void tearDown() throws IOException {
    if (server != null) {
      server.close();
    }
  }

  private String startTls(String options) throws IOException {
    objects.add(TlsCredentials.load("tls0", serverDir, TlsCredentials.Endpoint.SERVER, true));
    server = QmpServer.start(MonitorAddress.parse("tcp:127.0.0.1:0,tls-creds=tls0" + options), new QmpDispatcher(new FakeMonitorBackend()), objects);
    server.onRefused(refused::add);
    return server.uri();
  }

  @Test
  void clientWithCertificateRunsCommandsInsideTls() throws Exception {
    String uri = startTls("");
    assertThat(server.tls()).isTrue();
    try (QmpClient c = QmpClient.connect(uri, client)) {
      assertThat(c.execute("query-status").path("status").asText()).isNotEmpty();
    }
    assertThat(refused).isEmpty();
  }

  @Test
  void plainClientIsRefusedAndTheMonitorServesTheNext() throws Exception {
    String uri = startTls("");
    // a plain client that speaks first (QMP clients wait for the greeting: those time out)
    try (java.nio.channels.SocketChannel s = java.nio.channels.SocketChannel.open(
        new java.net.InetSocketAddress("127.0.0.1", Integer.parseInt(uri.substring(uri.lastIndexOf(':') + 1))))) {
      s.write(java.nio.ByteBuffer.wrap("{\"execute\": \"qmp_capabilities\"}\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
      assertThat(s.read(java.nio.ByteBuffer.allocate(4096))).as("no greeting for a plain client").isLessThanOrEqualTo(7);
    }
    String line = refused.poll(30, TimeUnit.SECONDS);
    assertThat(line).isNotNull().contains("refused").contains("does not speak TLS").doesNotContain("\n");
    try (QmpClient c = QmpClient.connect(uri, client)) {
      assertThat(c.execute("query-status").path("status").asText()).isNotEmpty();
    }
  }

  @Test
  void clientNotInAuthzIsRefused() throws Exception {
    objects.add(new Authz.Simple("auth0", "CN=someone-else"));
    String uri = startTls(",tls-authz=auth0");
    assertThatThrownBy(() -> QmpClient.connect(uri, client))
        .isInstanceOf(TlsHandshakeException.class)
        .hasMessageContaining("the server refused our certificate");
    assertThat(refused.poll(30, TimeUnit.SECONDS)).contains("is not allowed by tls-authz 'auth0'");
  }

  @Test
  void tlsClientAgainstPlainMonitorSaysSo() throws Exception {
    server = QmpServer.start("tcp:127.0.0.1:0", new FakeMonitorBackend());
    assertThatThrownBy(() -> QmpClient.connect(server.uri(), client))
        .isInstanceOf(TlsHandshakeException.class)
        .hasMessageContaining("the server does not speak TLS");
  }

  @Test
  void plainTcpMonitorListensOnLoopbackUnlessToldOtherwise() {
    assertThat(MonitorAddress.parse("tcp::4444").uri()).isEqualTo("tcp:127.0.0.1:4444");
    assertThat(MonitorAddress.parse("tcp:127.0.0.1:4444").insecure()).isFalse();
    assertThatThrownBy(() -> MonitorAddress.parse("tcp:0.0.0.0:4444"))
        .hasMessageContaining("a monitor without TLS listens on loopback only")
        .hasMessageContaining("insecure=on");
    MonitorAddress explicit = MonitorAddress.parse("tcp:0.0.0.0:4444,insecure=on");
    assertThat(explicit.uri()).isEqualTo("tcp:0.0.0.0:4444");
    assertThat(explicit.insecure()).isTrue();
    MonitorAddress tls = MonitorAddress.parse("tcp::4444,tls-creds=tls0,tls-authz=auth0");
    assertThat(tls.uri()).isEqualTo("tcp::4444");
    assertThat(List.of(tls.tlsCreds(), tls.tlsAuthz())).containsExactly("tls0", "auth0");
    assertThatThrownBy(() -> MonitorAddress.parse("tcp:127.0.0.1:1,tls-authz=a")).hasMessageContaining("needs tls-creds");
    assertThatThrownBy(() -> MonitorAddress.parse("tcp:127.0.0.1:1,colour=red")).hasMessageContaining("unknown monitor option");
  }

  @Test
  void missingCredentialsObjectFailsAtStart() {
    assertThatThrownBy(() -> QmpServer.start(MonitorAddress.parse("tcp:127.0.0.1:0,tls-creds=nope"),
            new QmpDispatcher(new FakeMonitorBackend()), objects))
        .hasMessage("No TLS credentials with id 'nope'");
  }
}
