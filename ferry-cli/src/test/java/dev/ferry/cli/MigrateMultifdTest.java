package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry migrate --multifd-channels 3 --multifd-compression zstd} between two {@code ferry
 * run} processes over tcp: the destination started with the same {@code --multifd-*} options and
 * {@code --paused}; completion, {@code multifd-bytes} in query-migrate, and the stopped source's
 * digest equal to the destination's.
 */
class MigrateMultifdTest {
  private static final Duration START = Duration.ofSeconds(120);

  @TempDir Path dir;

  @Test
  void migrateWithMultifdBetweenTwoProcessesIsExact() throws Exception {
    Path srcSock = dir.resolve("src.qmp");
    Path dstSock = dir.resolve("dst.qmp");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "64M", "--program", "stress", "--incoming",
            "tcp:127.0.0.1:0", "--multifd-channels", "3", "--multifd-compression", "zstd", "--paused",
            "--qmp", "unix:" + dstSock);
        FerryProcess src = FerryProcess.start(dir, "run", "--memory", "64M", "--program", "stress",
            "--dirty-rate", "64M", "--qmp", "unix:" + srcSock)) {
      String incoming = dst.awaitReady(START).get("incoming");
      src.awaitReady(START);
      Thread.sleep(300);
      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock,
          "--multifd-channels", "3", "--multifd-compression", "zstd", "--quiet", incoming);
      assertThat(mig.exitCode()).as(mig.stderr() + mig.stdout()).isZero();
      assertThat(mig.stderr()).contains("multifd=on", "multifd-channels=3", "multifd-compression=zstd");
      try (QmpClient s = QmpClient.connect("unix:" + srcSock); QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        JsonNode sm = s.execute("query-migrate");
        assertThat(sm.path("status").asText()).isEqualTo("completed");
        long multifdBytes = sm.path("ram").path("multifd-bytes").asLong();
        assertThat(multifdBytes).as(sm.toString()).isGreaterThanOrEqualTo(sm.path("ram").path("normal-bytes").asLong()).isPositive();
        long deadline = System.nanoTime() + START.toNanos();
        while (!d.execute("query-migrate").path("status").asText().equals("completed")) {
          assertThat(System.nanoTime() - deadline).as("destination completed").isNegative();
          Thread.sleep(20);
        }
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("paused");
        MigratePostcopyTest.sameMachineThenStressIntact(s, d);
      }
    }
  }
}
