package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.transport.TlsCredentials;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The credentials are standard (issue 14, item 4): {@code bin/ferry-certs} makes them with openssl,
 * Debian's {@code openssl s_client} completes a TLS 1.3 handshake with mutual authentication
 * against a Ferry destination that uses them, and a Ferry migration with the same files ends in
 * equal digests.
 */
@Tag("slow")
@Timeout(180)
class TlsOpensslInteropTest {
  @TempDir Path dir;

  private static Path repoRoot() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isExecutable(p.resolve("bin/ferry-certs"))) {
        return p;
      }
    }
    throw new IllegalStateException("bin/ferry-certs not found above " + Path.of("").toAbsolutePath());
  }

  private static String run(Path cwd, String stdin, List<String> cmd, int[] exit) throws Exception {
    Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true).start();
    p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    exit[0] = p.exitValue();
    return out;
  }

  /** A TLS destination on tcp:127.0.0.1:0 with the server files; returns its URI. */
  private static String listen(MachineHost dst, Path serverDir, CompletableFuture<Void> loaded, BlockingQueue<String> refused)
      throws Exception {
    dst.migration().objects().add(TlsCredentials.load("tls0", serverDir, TlsCredentials.Endpoint.SERVER, true));
    dst.migration().setParameters(Map.of("tls-creds", "tls0"));
    dst.migration().onIncomingRefused(refused::add);
    CountDownLatch listening = new CountDownLatch(1);
    AtomicReference<String> bound = new AtomicReference<>();
    Thread.ofPlatform().daemon().start(() -> {
      try {
        dst.incoming("tcp:127.0.0.1:0", b -> {
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
    return bound.get();
  }

  @Test
  void opensslClientCompletesAHandshakeWithAFerryDestination() throws Exception {
    int[] exit = new int[1];
    String certs = run(repoRoot(), "", List.of("bin/ferry-certs", dir.resolve("pki").toString()), exit);
    assumeTrue(!certs.contains("openssl not found"), "no openssl");
    assertThat(exit[0]).as(certs).isZero();
    Path server = dir.resolve("pki/server");
    Path client = dir.resolve("pki/client");

    try (MachineHost dst = new MachineHost(Machine.builder().memory(4 << 20).program("idle").build())) {
      CompletableFuture<Void> loaded = new CompletableFuture<>();
      BlockingQueue<String> refused = new LinkedBlockingQueue<>();
      String uri = listen(dst, server, loaded, refused);
      String port = uri.substring(uri.lastIndexOf(':') + 1);
      String out = run(dir, "", List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port, "-tls1_3", "-brief",
          "-CAfile", client.resolve("ca-cert.pem").toString(),
          "-cert", client.resolve("client-cert.pem").toString(),
          "-key", client.resolve("client-key.pem").toString(),
          "-verify_return_error", "-verify_hostname", "localhost"), exit);
      assertThat(exit[0]).as(out).isZero();
      assertThat(out).contains("CONNECTION ESTABLISHED", "Protocol version: TLSv1.3", "Verification: OK");
      assertThat(out).containsPattern("Ciphersuite: TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)");
      // the handshake passed (nothing refused); the stream then ended before a byte of a machine came
      try {
        loaded.get(60, TimeUnit.SECONDS);
      } catch (java.util.concurrent.ExecutionException e) {
        assertThat(e.getCause()).isInstanceOf(IOException.class);
      }
      assertThat(refused).isEmpty();
      assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.FAILED);
    }

    // and Ferry itself with the same files
    try (MachineHost dst = new MachineHost(Machine.builder().memory(8 << 20).program("stress").serial(new ByteArrayOutputStream()).build());
        MachineHost src = new MachineHost(Machine.builder().memory(8 << 20).program("stress").serial(new ByteArrayOutputStream()).build())) {
      CompletableFuture<Void> loaded = new CompletableFuture<>();
      String uri = listen(dst, server, loaded, new LinkedBlockingQueue<>());
      src.machine().resume();
      src.migration().objects().add(TlsCredentials.load("tls0", client, TlsCredentials.Endpoint.CLIENT, true));
      src.migration().setParameters(Map.of("tls-creds", "tls0", "tls-hostname", "localhost"));
      OutgoingMigration out = src.migration().migrate(uri);
      assertThat(out.await(60, TimeUnit.SECONDS)).as(src.migration().outgoingState().errorDesc()).isEqualTo(MigrationStatus.COMPLETED);
      loaded.get(60, TimeUnit.SECONDS);
      dst.startAfterLoad(true);
      assertThat(src.memoryDigest().firstDifference(dst.memoryDigest())).isEmpty();
    }
  }
}
