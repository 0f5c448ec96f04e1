package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import dev.ferry.testing.TestPki;
import dev.ferry.transport.TlsCredentials;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 from the command line, two processes: a destination with {@code --object
 * tls-creds-x509}, {@code --object authz-simple}, TLS for migrations and for its tcp monitor; a plain
 * {@code ferry migrate} is refused (one line on each side, the destination keeps listening), {@code
 * ferry migrate --tls-creds DIR} then completes, and the stopped source's digest equals the
 * destination's, read over the TLS monitor.
 */
@Timeout(180)
class TlsCommandsTest {
  private static final Duration START = Duration.ofSeconds(60);
  @TempDir Path dir;

  @Test
  void migrationAndMonitorInsideTlsFromTheCommandLine() throws Exception {
    TestPki pki = TestPki.create("Ferry Test CA");
    Path serverDir = pki.serverDir(dir.resolve("server"));
    Path clientDir = pki.clientDir(dir.resolve("client"));
    TlsCredentials monitorCreds = TlsCredentials.load("m", clientDir, TlsCredentials.Endpoint.CLIENT, true);
    Path srcSock = dir.resolve("src.qmp");
    try (FerryProcess dst =
            FerryProcess.start(dir, "run", "--memory", "16M", "--paused",
                "--object", "tls-creds-x509,id=tls0,dir=" + serverDir + ",endpoint=server,verify-peer=on",
                "--object", "authz-simple,id=auth0,identity=CN=ferry-client,,O=Ferry tests",
                "--tls-creds", "tls0", "--tls-authz", "auth0",
                "--incoming", "tcp:127.0.0.1:0",
                "--qmp", "tcp:127.0.0.1:0,tls-creds=tls0,tls-authz=auth0");
        FerryProcess src = FerryProcess.start(dir, "run", "--memory", "16M", "--qmp", "unix:" + srcSock)) {
      Map<String, String> ready = dst.awaitReady(START);
      src.awaitReady(START);
      String incoming = ready.get("incoming");
      String dstMonitor = ready.get("qmp");

      // a plain source is refused before any byte of its stream is read; the destination listens on
      FerryProcess plain = FerryProcess.run(dir, START, "migrate", "--quiet", "--qmp", "unix:" + srcSock, incoming);
      assertThat(plain.exitCode()).as(plain.stderr()).isEqualTo(1);
      assertThat(plain.stderr())
          .contains("ferry migrate: migration failed: destination " + incoming
              + " refused the plain stream: it requires TLS (it answered with a TLS alert); set tls-creds");
      String refusal = dst.awaitStderrLine(l -> l.startsWith("ferry run: incoming migration on "), START);
      assertThat(refusal).contains("does not speak TLS (it sent a plain migration stream, 'QEVM')");

      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--quiet", "--qmp", "unix:" + srcSock,
          "--tls-creds", clientDir.toString(), "--return-path", incoming);
      assertThat(mig.exitCode()).as(mig.stderr()).isZero();
      assertThat(mig.stdout()).containsPattern("  status +completed\n");
      dst.awaitStderrLine(l -> l.equals(RunCommand.LOADED_PREFIX + "paused"), START);

      MemoryDigest source;
      try (QmpClient s = QmpClient.connect("unix:" + srcSock)) {
        assertThat(s.execute("query-migrate-parameters").path("tls-creds").asText()).isEqualTo(MigrateCommand.TLS_OBJECT_ID);
        source = MemoryDigestInfo.fromJson(s.execute("ferry-memory-digest"));
        s.execute("quit");
      }
      try (QmpClient d = QmpClient.connect(dstMonitor, monitorCreds)) {
        MemoryDigest destination = MemoryDigestInfo.fromJson(d.execute("ferry-memory-digest"));
        assertThat(source.firstDifference(destination)).as("stopped source vs destination").isEmpty();
        assertThat(d.execute("query-migrate-parameters").path("tls-authz").asText()).isEqualTo("auth0");
      }

      // ferry monitor with client credentials, scripted
      FerryProcess hmp = FerryProcess.start(dir, "monitor", "--tls-creds", clientDir.toString(), dstMonitor);
      hmp.process().getOutputStream().write("info status\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
      hmp.process().getOutputStream().close();
      assertThat(hmp.waitFor(START)).as(hmp.stderr()).isZero();
      assertThat(hmp.stdout()).contains("VM status: paused");
      try (QmpClient d = QmpClient.connect(dstMonitor, monitorCreds)) {
        d.execute("quit");
      }
      assertThat(dst.waitFor(START)).isZero();
    }
  }

  @Test
  void plainTcpMonitorOffLoopbackNeedsInsecureOnAndWarns() throws Exception {
    FerryProcess refused = FerryProcess.run(dir, START, "run", "--memory", "4M", "--qmp", "tcp:0.0.0.0:0");
    assertThat(refused.exitCode()).isEqualTo(2);
    assertThat(refused.stderr().strip()).contains("a monitor without TLS listens on loopback only").doesNotContain("\n");
    try (FerryProcess p = FerryProcess.start(dir, "run", "--memory", "4M", "--program", "idle", "--qmp", "tcp:0.0.0.0:0,insecure=on")) {
      String warning = p.awaitStderrLine(l -> l.startsWith("ferry run: warning: QMP monitor"), START);
      assertThat(warning).contains("has no TLS and is not on loopback");
      p.awaitReady(START);
    }
  }
}
