package dev.ferry.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The acceptance run of issue 9's service, two processes and Redis's own tools: {@code
 * redis-benchmark -t set,incr -n 1000000 -r 100000} runs against a {@code ferry-kv} source while
 * {@code ferry migrate} moves it live to a {@code ferry-kv --incoming} destination. Then: the stopped
 * source's digest equals the paused destination's, the destination holds as many keys as the
 * source's frozen keyspace, and every write that checked clients got acknowledged (a counter per
 * client and a key per INCR) is on the destination, where they went on after the source's READONLY.
 * Prints the figures: requests/s before and during the migration, downtime, total time. Skips
 * without redis-tools.
 */
@Tag("slow")
class KvRedisBenchmarkTest {
  private static final Duration WAIT = Duration.ofMinutes(2);
  private static final int WRITERS = 4;
  private static final Pattern KV = Pattern.compile("kv=[^;:]+:(\\d+)");

  @TempDir Path dir;

  private static boolean onPath(String tool) {
    for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      if (Files.isExecutable(Path.of(d, tool))) {
        return true;
      }
    }
    return false;
  }

  private static int kvPort(String readyLine) {
    Matcher m = KV.matcher(readyLine);
    assertThat(m.find()).as("kv= in the ready line: %s", readyLine).isTrue();
    return Integer.parseInt(m.group(1));
  }

  /** One INFO field of a server, as a number. */
  private static long info(RespTestClient c, String section, String field) throws IOException {
    String text = c.callText("INFO", section);
    Matcher m = Pattern.compile(field + "[:=](\\d+)").matcher(text);
    return m.find() ? Long.parseLong(m.group(1)) : 0;
  }

  private record Sample(long timeNs, long commands) {}

  @Test
  void redisBenchmarkRunsWhileTheServiceMigratesLiveAndNoAcknowledgedWriteIsLost() throws Exception {
    assumeTrue(onPath("redis-benchmark") && onPath("redis-cli"),
        "redis-benchmark and redis-cli are not on PATH (Debian: apt-get install redis-tools)");
    String srcQmp = "unix:" + dir.resolve("src.qmp");
    String dstQmp = "unix:" + dir.resolve("dst.qmp");
    try (FerryChild src = FerryChild.startMain("source", FerryKvCommand.class.getName(), List.of("--port", "0"), srcQmp, Map.of(), dir.resolve("src.log"));
        FerryChild dst = FerryChild.startMain("destination", FerryKvCommand.class.getName(),
            List.of("--port", "0", "--incoming", "tcp:127.0.0.1:0", "--paused"), dstQmp, Map.of(), dir.resolve("dst.log"))) {
      int srcPort = kvPort(src.awaitReady(WAIT));
      int dstPort = kvPort(dst.awaitReady(WAIT));
      String incoming = dst.boundIncomingUri();

      // redis-cli, unmodified
      Process cli = new ProcessBuilder("redis-cli", "-p", Integer.toString(srcPort), "ping").redirectErrorStream(true).start();
      assertThat(new String(cli.getInputStream().readAllBytes()).strip()).isEqualTo("PONG");
      assertThat(cli.waitFor()).isZero();

      AtomicBoolean stop = new AtomicBoolean();
      CountDownLatch destinationOpen = new CountDownLatch(1);
      List<CheckedWriter> writers = new ArrayList<>();
      List<Thread> threads = new ArrayList<>();
      for (int i = 0; i < WRITERS; i++) {
        CheckedWriter w = new CheckedWriter(i, srcPort, dstPort, stop, destinationOpen);
        writers.add(w);
        threads.add(Thread.ofPlatform().name("writer-" + i).start(w));
      }

      // the source's command counter, four times a second (it stops at the switch-over)
      List<Sample> samples = new CopyOnWriteArrayList<>();
      AtomicBoolean sampling = new AtomicBoolean(true);
      Thread sampler = Thread.ofPlatform().name("sampler").start(() -> {
        try (RespTestClient c = new RespTestClient(srcPort)) {
          while (sampling.get()) {
            samples.add(new Sample(System.nanoTime(), info(c, "stats", "total_commands_processed")));
            Thread.sleep(250);
          }
        } catch (IOException | InterruptedException e) {
          // the test reads what was sampled
        }
      });

      Path benchOut = dir.resolve("redis-benchmark.out");
      Process bench = new ProcessBuilder("redis-benchmark", "-h", "127.0.0.1", "-p", Integer.toString(srcPort),
          "-t", "set,incr", "-n", "1000000", "-r", "100000", "-q")
          .redirectErrorStream(true).redirectOutput(benchOut.toFile()).start();
      try {
        // the benchmark is well under way: 150k commands
        long deadline = System.nanoTime() + WAIT.toNanos();
        while ((samples.isEmpty() || samples.getLast().commands() < 150_000) && System.nanoTime() < deadline) {
          assertThat(bench.isAlive()).as("redis-benchmark runs: %s", Files.readString(benchOut)).isTrue();
          Thread.sleep(50);
        }
        for (CheckedWriter w : writers) {
          assertThat(w.warmedUp.await(2, TimeUnit.MINUTES)).isTrue();
          assertThat(w.failure).isNull();
        }

        long migrateStartNs = System.nanoTime();
        List<String> argv = FerryChild.ferryCommand();
        argv.addAll(List.of("migrate", "--qmp", srcQmp, "--json", "--quiet", incoming));
        Path report = dir.resolve("migrate.json");
        Process migrate = new ProcessBuilder(argv).redirectOutput(report.toFile()).redirectError(dir.resolve("migrate.err").toFile()).start();
        assertThat(migrate.waitFor(10, TimeUnit.MINUTES)).as("ferry migrate ends").isTrue();
        long migrateEndNs = System.nanoTime();
        assertThat(migrate.exitValue()).as("ferry migrate: %s", Files.readString(dir.resolve("migrate.err"))).isZero();
        JsonNode r = new ObjectMapper().readTree(report.toFile());
        assertThat(r.path("status").asText()).isEqualTo("completed");
        // redis-benchmark has no reconnect: it ends at the first error reply, the source's READONLY
        // after the switch-over (it was still sending then)
        assertThat(bench.waitFor(2, TimeUnit.MINUTES)).as("redis-benchmark ends on READONLY").isTrue();
        assertThat(Files.readString(benchOut)).contains("Error from server: " + KvCommands.MIGRATED);

        // exact: the stopped source against the paused destination
        awaitRunState(src, "postmigrate");
        awaitRunState(dst, "paused");
        LiveMigration.DigestComparison d = LiveMigration.compareDigests(src, dst);
        assertThat(d.difference()).as(d.summary()).isNull();

        long frozenKeys;
        try (RespTestClient c = new RespTestClient(srcPort)) {
          frozenKeys = info(c, "keyspace", "keys");
        }
        LiveMigration.execute(dst.qmp(), "cont", null);
        try (RespTestClient c = new RespTestClient(dstPort)) {
          assertThat(c.call("DBSIZE")).as("keys on the destination = keys the source had").isEqualTo(frozenKeys);
        }
        destinationOpen.countDown();
        CheckedWriter.awaitWritingOnDestination(writers, System.nanoTime() + WAIT.toNanos());
        stop.set(true);
        for (Thread t : threads) {
          t.join(TimeUnit.SECONDS.toMillis(60));
        }
        try (RespTestClient c = new RespTestClient(dstPort)) {
          for (CheckedWriter w : writers) {
            w.verifyOn(c);
            assertThat(w.setsOnSource).isGreaterThanOrEqualTo(200);
          }
        }

        // the destination serves redis-benchmark as the source did
        Path afterOut = dir.resolve("redis-benchmark-destination.out");
        Process after = new ProcessBuilder("redis-benchmark", "-h", "127.0.0.1", "-p", Integer.toString(dstPort),
            "-t", "set,incr", "-n", "100000", "-r", "100000", "-q")
            .redirectErrorStream(true).redirectOutput(afterOut.toFile()).start();
        assertThat(after.waitFor(5, TimeUnit.MINUTES)).isTrue();
        List<String> afterRates = summaryLines(afterOut);
        assertThat(after.exitValue()).as("redis-benchmark on the destination: %s", afterRates).isZero();
        assertThat(afterRates).hasSize(2);

        // figures
        sampling.set(false);
        sampler.join();
        double before = rate(samples, migrateStartNs - TimeUnit.SECONDS.toNanos(5), migrateStartNs);
        double during = rate(samples, migrateStartNs, migrateEndNs);
        String figures = String.format(
            "ferry-kv under redis-benchmark -t set,incr -n 1000000 -r 100000: %.0f requests/s before the migration,"
                + " %.0f requests/s during it; migration total %d ms, downtime %d ms, %d bytes; %d keys moved; digests %s;"
                + " afterwards on the destination (-n 100000): %s",
            before, during, r.path("total-time-ms").asLong(), r.path("downtime-ms").asLong(),
            r.path("transferred-bytes").asLong(), frozenKeys, d.summary(), afterRates);
        System.out.println(figures);
        Files.writeString(Path.of("target", "kv-acceptance.txt"), figures + System.lineSeparator());
        assertThat(before).isPositive();
      } finally {
        bench.destroy();
        if (!bench.waitFor(10, TimeUnit.SECONDS)) {
          bench.destroyForcibly();
        }
        System.out.println("redis-benchmark on the source: " + summaryLines(benchOut));
      }
    }
  }

  /** redis-benchmark's result lines ({@code SET: 12345.67 requests per second, ...}) and errors. */
  private static List<String> summaryLines(Path out) throws IOException {
    return Files.readString(out).replace('\r', '\n').lines()
        .map(String::strip)
        .filter(l -> l.contains("requests per second") || l.contains("rror"))
        .limit(20)
        .toList();
  }

  /** Commands per second between two times, from the samples that bracket them. */
  private static double rate(List<Sample> samples, long fromNs, long toNs) {
    Sample a = null;
    Sample b = null;
    for (Sample s : samples) {
      if (s.timeNs() <= fromNs || a == null) {
        a = s;
      }
      if (s.timeNs() <= toNs) {
        b = s;
      }
    }
    if (a == null || b == null || b.timeNs() <= a.timeNs()) {
      return 0;
    }
    return (b.commands() - a.commands()) * 1e9 / (b.timeNs() - a.timeNs());
  }

  private static void awaitRunState(FerryChild c, String want) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    String st;
    while (!(st = LiveMigration.runState(c)).equals(want)) {
      assertThat(System.nanoTime()).as("%s reaches %s (is %s)", c.name(), want, st).isLessThan(deadline);
      Thread.sleep(20);
    }
  }
}
