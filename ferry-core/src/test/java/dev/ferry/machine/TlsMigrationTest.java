package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.RamBlock;
import dev.ferry.testing.TestPki;
import dev.ferry.transport.Authz;
import dev.ferry.transport.TlsCredentials;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Migration inside TLS 1.3 with mutual authentication (issue 14): a migration over tcp and over
 * unix ends with the stopped source's RAM equal, byte for byte, to the destination's; each refusal
 * fails before any machine byte is read, with a one-line reason on both sides, the source running on
 * and the destination still listening, which the legitimate migration that follows each refusal
 * proves.
 */
@Timeout(120)
class TlsMigrationTest {
  private static final long MEMORY = 8 << 20;

  @TempDir static Path pkiRoot;
  @TempDir Path dir;

  static TestPki pki;
  static TestPki otherPki;
  static Path serverDir;
  static Path clientDir;

  private final java.util.List<AutoCloseable> toClose = new java.util.ArrayList<>();

  @BeforeAll
  static void certificates() {
    pki = TestPki.create("Ferry Test CA");
    otherPki = TestPki.create("Someone Else's CA");
    serverDir = pki.serverDir(pkiRoot.resolve("server"));
    clientDir = pki.clientDir(pkiRoot.resolve("client"));
  }

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : toClose.reversed()) {
      c.close();
    }
  }

  /** A destination waiting on {@code uri}; refusals land in {@link #refused}. */
  final class Destination {
    final MachineHost host = track(new MachineHost(Machine.builder().memory(MEMORY).program("stress").serial(new ByteArrayOutputStream()).build()));
    final BlockingQueue<String> refused = new LinkedBlockingQueue<>();
    final CompletableFuture<Void> loaded = new CompletableFuture<>();
    String uri;

    Destination tls(Path credsDir, String authzId) throws IOException {
      host.migration().objects().add(TlsCredentials.load("tls0", credsDir, TlsCredentials.Endpoint.SERVER, true));
      Map<String, Object> p = new HashMap<>();
      p.put("tls-creds", "tls0");
      if (authzId != null) {
        p.put("tls-authz", authzId);
      }
      host.migration().setParameters(p);
      return this;
    }

    Destination listen(String listenUri) throws InterruptedException {
      host.migration().onIncomingRefused(refused::add);
      CountDownLatch listening = new CountDownLatch(1);
      AtomicReference<String> bound = new AtomicReference<>();
      Thread.ofPlatform().daemon().name("dst").start(() -> {
        try {
          host.incoming(listenUri, b -> {
            bound.set(b);
            listening.countDown();
          });
          loaded.complete(null);
        } catch (Throwable t) {
          loaded.completeExceptionally(t);
          listening.countDown();
        }
      });
      assertThat(listening.await(30, TimeUnit.SECONDS)).isTrue();
      assertThat(loaded).as("destination failed to listen").isNotCompletedExceptionally();
      uri = bound.get();
      return this;
    }

    /** The next refusal line; fails when none comes. */
    String nextRefusal() throws InterruptedException {
      String line = refused.poll(30, TimeUnit.SECONDS);
      assertThat(line).as("a refusal line on the destination").isNotNull();
      assertThat(line).doesNotContain("\n");
      return line;
    }
  }

  private <T extends AutoCloseable> T track(T c) {
    toClose.add(c);
    return c;
  }

  private MachineHost runningSource() throws InterruptedException {
    MachineHost src = track(new MachineHost(Machine.builder().memory(MEMORY).program("stress").serial(new ByteArrayOutputStream()).build()));
    src.machine().resume();
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (src.machine().cpu(0).reg(2) < 1 && System.nanoTime() < until) {
      Thread.sleep(5);
    }
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
    return src;
  }

  private static void useClientCreds(MachineHost src, Path credsDir, String id) throws IOException {
    src.migration().objects().add(TlsCredentials.load(id, credsDir, TlsCredentials.Endpoint.CLIENT, true));
    src.migration().setParameters(Map.of("tls-creds", id));
  }

  /** Migrates and asserts the failure: one line, naming {@code reason}; the source runs on. */
  private static String failedMigration(MachineHost src, String uri, String reason) throws InterruptedException {
    OutgoingMigration out = src.migration().migrate(uri);
    assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
    String error = src.migration().outgoingState().errorDesc();
    assertThat(error).contains(reason).doesNotContain("\n");
    assertThat(src.machine().isRunning()).as("source keeps running").isTrue();
    return error;
  }

  /** A legitimate migration on the same destination, ending in an exact comparison. */
  private void legitimateMigration(Destination dst, MachineHost src) throws Exception {
    OutgoingMigration out = src.migration().migrate(dst.uri);
    MigrationStatus end = out.await(60, TimeUnit.SECONDS);
    assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
    dst.loaded.get(60, TimeUnit.SECONDS);
    dst.host.startAfterLoad(true); // loaded, left paused: compared before its guest runs
    assertSameRam(src.machine(), dst.host.machine());
    MemoryDigest a = src.memoryDigest();
    MemoryDigest b = dst.host.memoryDigest();
    assertThat(a.firstDifference(b)).as("digest of the stopped source vs the destination").isEmpty();
    assertThat(a.matches(b)).isTrue();
    assertThat(dst.host.machine().cpu(0).reg(2)).isEqualTo(src.machine().cpu(0).reg(2));
  }

  /** The stopped source's RAM equals the destination's, block by block (exact; names the first page). */
  static void assertSameRam(Machine src, Machine dst) {
    assertThat(src.isRunning()).isFalse();
    assertThat(dst.isRunning()).isFalse();
    List<RamBlock> a = src.ramBlocks();
    List<RamBlock> b = dst.ramBlocks();
    assertThat(b).hasSameSizeAs(a);
    for (int i = 0; i < a.size(); i++) {
      MemorySegment x = a.get(i).memory();
      MemorySegment y = b.get(i).memory();
      assertThat(y.byteSize()).isEqualTo(x.byteSize());
      long at = x.mismatch(y);
      if (at >= 0) {
        fail("RAM block " + a.get(i).name() + " differs at page " + (at / a.get(i).pageSize()) + " (offset " + at + ")");
      }
    }
  }

  // ------------------------------------------------------------------ migrations

  @Test
  void migrationOverTlsOnTcpIsExact() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
    assertThat(dst.refused).isEmpty();
  }

  /** Multifd inside TLS: every channel runs its own TLS session, as 7.2's do. */
  @Test
  void multifdOverTlsOnTcpIsExact() throws Exception {
    Destination dst = new Destination().tls(serverDir, null);
    MultifdMigrationTest.multifdOn(dst.host, 2, "zstd");
    dst.listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    MultifdMigrationTest.multifdOn(src, 2, "zstd");
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
    assertThat(src.migration().outgoing().info().multifdBytes()).isPositive();
    assertThat(dst.refused).isEmpty();
  }

  @Test
  void migrationOverTlsOnUnixIsExact() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("unix:" + dir.resolve("mig.sock"));
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    // no host in a unix URI: as QEMU, tls-hostname must say which name the certificate carries
    assertThatThrownBy(() -> src.migration().migrate(dst.uri)).hasMessage("No hostname available for TLS");
    src.migration().setParameters(Map.of("tls-hostname", "localhost"));
    legitimateMigration(dst, src);
  }

  @Test
  void tlsOnExecOrFileIsRefusedAtOnce() throws Exception {
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    assertThatThrownBy(() -> src.migration().migrate("file:" + dir.resolve("x")))
        .hasMessageContaining("two-way transport");
    assertThat(src.migration().outgoingState().status()).isEqualTo(MigrationStatus.NONE);
  }

  // ------------------------------------------------------------------ refusals (item 3)

  @Test
  void plainSourceIsRefusedByTlsDestination() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    // the destination answers with a TLS alert; the source names that, not a reset or broken pipe
    assertThat(failedMigration(src, dst.uri, "requires TLS"))
        .isEqualTo("destination tcp:127.0.0.1:" + port(dst.uri) + " refused the plain stream: it requires TLS (it answered with a TLS alert); set tls-creds");
    assertThat(dst.nextRefusal()).contains("does not speak TLS").contains("QEVM");
    assertThat(dst.host.migration().incomingState().status()).isEqualTo(MigrationStatus.NONE);
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
  }

  @Test
  void plainSourceWithoutReturnPathNamesTheTlsRequirement() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    // nobody reads the destination's answer during the stream: the failed write looks for it
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, false));
    assertThat(failedMigration(src, dst.uri, "requires TLS"))
        .isEqualTo("destination tcp:127.0.0.1:" + port(dst.uri) + " refused the plain stream: it requires TLS (it answered with a TLS alert); set tls-creds");
    assertThat(dst.nextRefusal()).contains("does not speak TLS").contains("QEVM");
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
  }

  @Test
  void tlsSourceIsRefusedByPlainDestination() throws Exception {
    Destination dst = new Destination().listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    failedMigration(src, dst.uri, "the server closed the connection during the handshake (does it use TLS, with tls-creds?)");
    assertThat(dst.nextRefusal()).contains("started a TLS handshake, but this destination has no tls-creds");
    src.migration().setParameters(Map.of("tls-creds", ""));
    legitimateMigration(dst, src);
  }

  @Test
  void clientCertificateFromAnotherCaIsRefused() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    Path foreign = otherPki.clientDir(dir.resolve("foreign"));
    // the foreign client still trusts our CA for the server, so only its own certificate is wrong
    java.nio.file.Files.copy(serverDir.resolve("ca-cert.pem"), foreign.resolve("ca-cert.pem"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    useClientCreds(src, foreign, "foreign");
    failedMigration(src, dst.uri, "the server refused our certificate");
    assertThat(dst.nextRefusal()).contains("the client's certificate 'CN=ferry-client,O=Ferry tests' is not issued by the CA in ca-cert.pem");
    src.migration().objects().add(TlsCredentials.load("tls0", clientDir, TlsCredentials.Endpoint.CLIENT, true));
    src.migration().setParameters(Map.of("tls-creds", "tls0"));
    legitimateMigration(dst, src);
  }

  @Test
  void serverCertificateFromAnotherCaIsRefused() throws Exception {
    Path foreignServer = otherPki.serverDir(dir.resolve("foreign-server"));
    java.nio.file.Files.copy(serverDir.resolve("ca-cert.pem"), foreignServer.resolve("ca-cert.pem"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    Destination dst = new Destination().tls(foreignServer, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    failedMigration(src, dst.uri, "the server's certificate 'CN=localhost,O=Ferry tests' is not issued by the CA in ca-cert.pem");
    assertThat(dst.nextRefusal()).contains("the client refused our certificate");
    assertThat(dst.host.migration().incomingState().status()).isEqualTo(MigrationStatus.NONE);
  }

  @Test
  void expiredClientCertificateIsRefused() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    Instant now = Instant.now();
    Path expired = pki.clientDir(dir.resolve("expired"),
        TestPki.Spec.of(TestPki.CLIENT_DN).valid(now.minus(Duration.ofDays(10)), now.minus(Duration.ofDays(1))));
    useClientCreds(src, expired, "old");
    failedMigration(src, dst.uri, "the server refused our certificate");
    assertThat(dst.nextRefusal()).contains("the client's certificate 'CN=ferry-client,O=Ferry tests' has expired");
    src.migration().objects().add(TlsCredentials.load("tls0", clientDir, TlsCredentials.Endpoint.CLIENT, true));
    src.migration().setParameters(Map.of("tls-creds", "tls0"));
    legitimateMigration(dst, src);
  }

  @Test
  void notYetValidClientCertificateIsRefused() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    Instant now = Instant.now();
    Path early = pki.clientDir(dir.resolve("early"),
        TestPki.Spec.of(TestPki.CLIENT_DN).valid(now.plus(Duration.ofDays(1)), now.plus(Duration.ofDays(10))));
    useClientCreds(src, early, "early");
    failedMigration(src, dst.uri, "the server refused our certificate");
    assertThat(dst.nextRefusal()).contains("is not yet valid");
    src.migration().objects().add(TlsCredentials.load("tls0", clientDir, TlsCredentials.Endpoint.CLIENT, true));
    src.migration().setParameters(Map.of("tls-creds", "tls0"));
    legitimateMigration(dst, src);
  }

  @Test
  void expiredServerCertificateIsRefusedByTheSource() throws Exception {
    Instant now = Instant.now();
    Path expired = pki.serverDir(dir.resolve("expired-server"),
        TestPki.Spec.of("CN=localhost").sans("IP:127.0.0.1").valid(now.minus(Duration.ofDays(10)), now.minus(Duration.ofDays(1))));
    Destination dst = new Destination().tls(expired, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    failedMigration(src, dst.uri, "the server's certificate 'CN=localhost' has expired");
    assertThat(dst.nextRefusal()).contains("the client refused our certificate: it has expired");
  }

  @Test
  void hostnameMismatchIsRefused() throws Exception {
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    src.migration().setParameters(Map.of("tls-hostname", "dst.example.com"));
    failedMigration(src, dst.uri,
        "the server's certificate 'CN=localhost,O=Ferry tests' does not match hostname 'dst.example.com'");
    assertThat(dst.nextRefusal()).contains("the client refused our certificate");
    src.migration().setParameters(Map.of("tls-hostname", ""));
    legitimateMigration(dst, src);
  }

  @Test
  void clientNotInAuthzListIsRefused() throws Exception {
    Destination dst = new Destination();
    dst.host.migration().objects().add(new Authz.AuthzList("auth0", Authz.Policy.DENY,
        List.of(new Authz.Rule("CN=someone-else,O=Ferry tests", Authz.Policy.ALLOW, Authz.Format.EXACT))));
    dst.tls(serverDir, "auth0").listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    failedMigration(src, dst.uri, "the server refused our certificate");
    assertThat(dst.nextRefusal()).contains("the client's certificate 'CN=ferry-client,O=Ferry tests' is not allowed by tls-authz 'auth0'");
  }

  @Test
  void authzEditsApplyToTheNextConnection() throws Exception {
    Destination dst = new Destination();
    Authz.AuthzList list = new Authz.AuthzList("auth0", Authz.Policy.DENY, List.of());
    dst.host.migration().objects().add(list);
    dst.tls(serverDir, "auth0").listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    failedMigration(src, dst.uri, "the server refused our certificate");
    assertThat(dst.nextRefusal()).contains("is not allowed by tls-authz 'auth0'");
    // the same listener, the list edited: the next connection is let in
    list.setRules(List.of(new Authz.Rule("CN=ferry-client,*", Authz.Policy.ALLOW, Authz.Format.GLOB)));
    legitimateMigration(dst, src);
  }

  @Test
  void authzSimpleAllowsItsIdentity() throws Exception {
    Destination dst = new Destination();
    dst.host.migration().objects().add(new Authz.Simple("auth0", TestPki.CLIENT_DN));
    dst.tls(serverDir, "auth0").listen("tcp:127.0.0.1:0");
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
  }

  // ------------------------------------------------------------------ fuzzed handshakes

  /**
   * Random bytes (seeded) before, or instead of, a ClientHello: each connection is refused or cut
   * off by the handshake deadline, the destination never crashes or hangs, and a legitimate
   * migration follows on the same listener.
   */
  @Test
  void fuzzedHandshakesNeverCrashOrHangTheDestination() throws Exception {
    long seed = Long.getLong("ferry.seed", 14L);
    Random rnd = new Random(seed);
    Destination dst = new Destination().tls(serverDir, null).listen("tcp:127.0.0.1:0");
    InetSocketAddress addr = new InetSocketAddress("127.0.0.1", port(dst.uri));
    int attempts = 40;
    for (int i = 0; i < attempts; i++) {
      byte[] junk = new byte[1 + rnd.nextInt(i % 4 == 0 ? 20_000 : 300)];
      rnd.nextBytes(junk);
      if (i % 5 == 1) {
        junk[0] = 0x16; // a plausible record header, then noise
        junk[1] = 0x03;
      }
      try (SocketChannel s = SocketChannel.open(addr)) {
        s.write(ByteBuffer.wrap(junk));
        s.shutdownOutput();
        ByteBuffer sink = ByteBuffer.allocate(4096);
        while (s.read(sink) >= 0) {
          sink.clear();
        }
      } catch (IOException e) {
        // the destination may reset the connection: that is its right
      }
      String line = dst.nextRefusal();
      assertThat(line).as("seed " + seed + ", attempt " + i).contains("TLS handshake with");
    }
    assertThat(dst.host.migration().incomingState().status()).isEqualTo(MigrationStatus.NONE);
    MachineHost src = runningSource();
    useClientCreds(src, clientDir, "tls0");
    legitimateMigration(dst, src);
  }

  private static int port(String tcpUri) {
    return Integer.parseInt(tcpUri.substring(tcpUri.lastIndexOf(':') + 1));
  }
}
