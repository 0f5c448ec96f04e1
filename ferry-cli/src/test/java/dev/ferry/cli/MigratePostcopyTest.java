package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry migrate --postcopy} between two {@code ferry run} processes: the destination started
 * with {@code --postcopy --paused} (postcopy-ram before the stream arrives, vCPUs held from RUN), the
 * switch after the first pass, completion, and the stopped source's digest equal to the destination's.
 */
class MigratePostcopyTest {
  private static final Duration START = Duration.ofSeconds(120);

  @TempDir Path dir;

  @Test
  void migratePostcopyBetweenTwoProcessesIsExact() throws Exception {
    Path srcSock = dir.resolve("src.qmp");
    Path dstSock = dir.resolve("dst.qmp");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "64M", "--program", "stress", "--incoming",
            "tcp:127.0.0.1:0", "--postcopy", "--paused", "--qmp", "unix:" + dstSock);
        FerryProcess src = FerryProcess.start(dir, "run", "--memory", "64M", "--program", "stress",
            "--qmp", "unix:" + srcSock)) {
      String incoming = dst.awaitReady(START).get("incoming");
      src.awaitReady(START);
      Thread.sleep(300);
      // 64 MiB/s and a 1 ms limit: the stress guest's dirtying never fits the switch-over threshold
      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--postcopy",
          "--bandwidth", "64M", "--downtime-limit", "1", "--json", incoming);
      assertThat(mig.exitCode()).as(mig.stderr() + mig.stdout()).isZero();
      assertThat(mig.stderr()).contains("postcopy-ram=on").contains("postcopy-active");
      JsonNode j = new ObjectMapper().readTree(mig.stdout());
      assertThat(j.path("status").asText()).isEqualTo("completed");
      assertThat(j.path("postcopy").path("switched").asBoolean()).as(mig.stdout()).isTrue();
      assertThat(j.path("postcopy").path("background-pages").asLong()).isPositive();
      try (QmpClient s = QmpClient.connect("unix:" + srcSock); QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        long deadline = System.nanoTime() + START.toNanos();
        while (!d.execute("query-status").path("status").asText().equals("paused")
            || !d.execute("query-migrate").path("status").asText().equals("completed")) {
          assertThat(System.nanoTime() - deadline).as("destination completed and paused").isNegative();
          Thread.sleep(20);
        }
        JsonNode dm = d.execute("query-migrate");
        assertThat(dm.has("postcopy-blocktime")).as(dm.toString()).isTrue();
        assertThat(dm.path("x-ferry-postcopy-fault-latency").has("p99-us")).as(dm.toString()).isTrue();
        assertThat(s.execute("query-status").path("status").asText()).isEqualTo("postmigrate");
        sameMachineThenStressIntact(s, d);
      }
    }
  }

  /**
   * The stopped source's RAM and device digests equal the paused destination's; the destination then
   * runs and its stress pattern is intact; both quit.
   */
  static void sameMachineThenStressIntact(QmpClient s, QmpClient d) throws Exception {
    JsonNode sd = s.execute("ferry-memory-digest");
    JsonNode dd = d.execute("ferry-memory-digest");
    assertThat(dd.path("ram").asText()).isEqualTo(sd.path("ram").asText());
    assertThat(dd.path("devices").asText()).isEqualTo(sd.path("devices").asText());
    d.execute("cont");
    assertThat(d.execute("ferry-stress-check").path("bad-pages").asLong()).isZero();
    s.execute("quit");
    d.execute("quit");
  }
}
