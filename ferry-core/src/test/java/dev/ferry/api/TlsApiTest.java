package dev.ferry.api;

import static dev.ferry.api.VcpuProgramTest.WAIT;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testing.TestPki;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS through {@link MigrationOptions#tls()}: the credentials directory is loaded for the side of
 * the call (client for migrate, server for incoming); an allowed client's migration ends with the
 * exact state, a client not on the list is refused before any machine byte is read.
 */
@Timeout(120)
class TlsApiTest {
  @TempDir static Path pkiRoot;
  static Path serverDir;
  static Path clientDir;

  @BeforeAll
  static void certificates() {
    TestPki pki = TestPki.create("Ferry API Test CA");
    serverDir = pki.serverDir(pkiRoot.resolve("server"));
    clientDir = pki.clientDir(pkiRoot.resolve("client"));
  }

  /** A running idle source with 4 MiB written: TLS is what is tested, not convergence. */
  static FerryMachine machine() throws InterruptedException {
    FerryMachine m = FerryMachine.builder().ram("heap", 4 << 20).build();
    m.start();
    try (GuestThread t = m.openGuestThread()) {
      t.enterStep();
      try {
        for (long off = 0; off < 4 << 20; off += 4096) {
          t.putLong(0, off, off * 31 + 7);
        }
      } finally {
        t.exitStep();
      }
    }
    return m;
  }

  @Test
  void migratesInsideTlsToADestinationThatAllowsTheClient() throws Exception {
    try (FerryMachine src = machine();
        FerryMachine dst = FerryMachine.builder().ram("heap", 4 << 20).build()) {
      Migration in =
          dst.incoming(
              "tcp:127.0.0.1:0",
              MigrationOptions.builder()
                  .autostart(false)
                  .tls(TlsOptions.x509(serverDir).withAllowedClients(TestPki.CLIENT_DN))
                  .build());
      Migration out =
          src.migrate(in.listeningUri(WAIT), MigrationOptions.builder().tls(TlsOptions.x509(clientDir)).build());
      assertThat(out.await(WAIT)).as(out.error().orElse("")).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.digest().firstDifference(dst.digest())).isEmpty();
    }
  }

  @Test
  void aClientNotAllowedIsRefusedAndTheSourceRunsOn() throws Exception {
    try (FerryMachine src = machine();
        FerryMachine dst = FerryMachine.builder().ram("heap", 4 << 20).build()) {
      Migration in =
          dst.incoming(
              "tcp:127.0.0.1:0",
              MigrationOptions.builder()
                  .tls(TlsOptions.x509(serverDir).withAllowedClients("CN=someone-else,O=Ferry tests"))
                  .build());
      Migration out =
          src.migrate(in.listeningUri(WAIT), MigrationOptions.builder().tls(TlsOptions.x509(clientDir)).build());
      assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.FAILED);
      assertThat(out.error()).isPresent();
      assertThat(src.runState()).isEqualTo(RunState.RUNNING);
      assertThat(in.status()).isNotIn(MigrationStatus.COMPLETED, MigrationStatus.FAILED); // still listening
    }
  }
}
