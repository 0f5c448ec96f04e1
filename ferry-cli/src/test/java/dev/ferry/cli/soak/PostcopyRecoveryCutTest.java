package dev.ferry.cli.soak;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.cli.FerryProcess;
import dev.ferry.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Postcopy recovery between two {@code ferry run} processes, with the soak's {@link CutProxy}
 * cutting the link at seeded points: a cut during postcopy pauses both sides; {@code
 * migrate-recover} on the destination and {@code ferry migrate --resume} on the source continue;
 * a second cut inside the recovery handshake pauses them again; the next recovery completes, and
 * the stopped source's digest equals the destination's (held with {@code --paused}, so it never ran
 * a half-received guest). And a source killed while paused leaves the destination paused, its
 * monitor answering, with an error that says what happened. Seed: {@code -Dferry.seed=N}.
 */
@Timeout(300)
class PostcopyRecoveryCutTest {
  private static final Duration START = Duration.ofSeconds(120);
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  @TempDir Path dir;

  private static ObjectNode caps(String... names) {
    ObjectNode o = F.objectNode();
    var a = o.putArray("capabilities");
    for (String n : names) {
      a.addObject().put("capability", n).put("state", true);
    }
    return o;
  }

  private static String status(QmpClient q) throws Exception {
    return q.execute("query-migrate").path("status").asText();
  }

  private static void await(String what, Check c) throws Exception {
    long deadline = System.nanoTime() + START.toNanos();
    while (!c.ok()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not reached in " + START.toSeconds() + " s: " + what);
      }
      Thread.sleep(10);
    }
  }

  @FunctionalInterface
  interface Check {
    boolean ok() throws Exception;
  }

  /** A source and a held postcopy destination, their monitors, and a migration cut by a proxy. */
  private final class Pair implements AutoCloseable {
    final Path srcSock = dir.resolve("src.qmp");
    final Path dstSock = dir.resolve("dst.qmp");
    final FerryProcess dst;
    final FerryProcess src;
    final QmpClient s;
    final QmpClient d;
    final String incoming;
    boolean failed = true;

    Pair() throws Exception {
      dst = FerryProcess.start(dir, "run", "--memory", "32M", "--program", "stress", "--incoming", "tcp:127.0.0.1:0",
          "--postcopy", "--paused", "--qmp", "unix:" + dstSock);
      src = FerryProcess.start(dir, "run", "--memory", "32M", "--program", "stress", "--qmp", "unix:" + srcSock);
      incoming = dst.awaitReady(START).get("incoming");
      src.awaitReady(START);
      s = QmpClient.connect("unix:" + srcSock);
      d = QmpClient.connect("unix:" + dstSock);
    }

    /**
     * Migrates through a proxy that cuts {@code cutBytes} stream bytes after the destination ran
     * POSTCOPY_RUN (its held machine went from inmigrate to paused; a cut before RUN would fail the
     * destination for good, as in QEMU): postcopy starts at once, and the postcopy background rate
     * is low enough that the cut comes long before the end.
     */
    CutProxy migrateThroughCut(long cutBytes) throws Exception {
      s.execute("migrate-set-capabilities", caps("postcopy-ram"));
      s.execute("migrate-set-parameters", F.objectNode()
          .put("max-bandwidth", 1 << 20).put("downtime-limit", 1).put("max-postcopy-bandwidth", 4 << 20));
      CutProxy proxy = CutProxy.start(incoming, dir.resolve("proxy1.sock"), Long.MAX_VALUE);
      s.execute("migrate", F.objectNode().put("uri", proxy.listenUri()));
      s.execute("migrate-start-postcopy");
      await("destination in postcopy after RUN", () -> d.execute("query-status").path("status").asText().equals("paused"));
      proxy.cutAfter(proxy.forwardedBytes() + cutBytes);
      return proxy;
    }

    void awaitBothPaused() throws Exception {
      await("both sides postcopy-paused", () -> status(s).equals("postcopy-paused") && status(d).equals("postcopy-paused"));
    }

    /** migrate-recover on the destination at a fresh loopback port; returns where it listens. */
    String recover() throws Exception {
      d.execute("migrate-recover", F.objectNode().put("uri", "tcp:127.0.0.1:0"));
      String at = dev.ferry.qmp.qapi.MigrationInfo.fromJson(d.execute("query-migrate")).socketAddress().get(0);
      assertThat(at).startsWith("tcp:127.0.0.1:");
      return at;
    }

    @Override
    public void close() {
      if (failed) {
        try {
          System.err.println("--- source query-migrate: " + s.execute("query-migrate"));
        } catch (Exception e) {
          System.err.println("--- source query-migrate: " + e);
        }
        System.err.println("--- destination stderr:\n" + dst.stderr() + "\n--- source stderr:\n" + src.stderr());
      }
      for (AutoCloseable c : new AutoCloseable[] {s, d, src, dst}) {
        try {
          if (c != null) {
            c.close();
          }
        } catch (Exception e) {
          // best effort
        }
      }
    }
  }

  @Test
  void cutsInPostcopyAndInsideTheRecoveryHandshakeThenRecoveryGivesTheExactState() throws Exception {
    long seed = Long.getLong("ferry.seed", 10);
    Random rnd = new Random(seed);
    long cut1 = 1 + (long) (rnd.nextDouble() * (4 << 20)); // in postcopy: up to 4 MiB after RUN
    long cut2 = 1 + rnd.nextInt(12); // inside RECV_BITMAP / POSTCOPY_RESUME of the first recovery
    String seedNote = "seed " + seed + ": cuts after " + cut1 + " and " + cut2 + " bytes";
    try (Pair p = new Pair()) {
      Thread.sleep(200);
      CutProxy first = p.migrateThroughCut(cut1);
      p.awaitBothPaused();
      assertThat(first.cut()).as(seedNote).isTrue();
      JsonNode dm = p.d.execute("query-migrate");
      assertThat(dm.path("error-desc").asText()).as(seedNote).contains("migrate-recover");
      assertThat(p.d.execute("query-status").path("status").asText()).isEqualTo("paused"); // held: never ran
      assertThatThrownBy(() -> p.d.execute("cont")).as(seedNote).hasMessageContaining("paused");

      // a recovery whose connection is cut inside the handshake: both sides pause again
      String at1 = p.recover();
      try (CutProxy second = CutProxy.start(at1, dir.resolve("proxy2.sock"), cut2)) {
        FerryProcess r1 = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + p.srcSock, "--resume", second.listenUri());
        assertThat(r1.exitCode()).as(seedNote + "\n" + r1.stderr()).isEqualTo(1);
        assertThat(r1.stderr()).as(seedNote).contains("postcopy-paused");
        assertThat(second.cut()).as(seedNote).isTrue();
      }
      p.awaitBothPaused();

      // the next recovery completes; the rest of RAM goes at full speed
      String at2 = p.recover();
      p.s.execute("migrate-set-parameters", F.objectNode().put("max-postcopy-bandwidth", 0));
      FerryProcess r2 = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + p.srcSock, "--resume", "--json", at2);
      assertThat(r2.exitCode()).as(seedNote + "\n" + r2.stderr()).isZero();
      assertThat(r2.stderr()).contains("postcopy resumed over " + at2);
      await("destination completed", () -> status(p.d).equals("completed"));
      assertThat(p.s.execute("query-status").path("status").asText()).isEqualTo("postmigrate");
      JsonNode sd = p.s.execute("ferry-memory-digest");
      JsonNode dd = p.d.execute("ferry-memory-digest");
      assertThat(dd.path("ram").asText()).as(seedNote).isEqualTo(sd.path("ram").asText());
      assertThat(dd.path("devices").asText()).as(seedNote).isEqualTo(sd.path("devices").asText());
      p.d.execute("cont");
      assertThat(p.d.execute("ferry-stress-check").path("bad-pages").asLong()).isZero();
      p.failed = false;
    }
  }

  /**
   * Found by the soak (seed 77 --fault postcopy-recovery, run 6): a {@code migrate-pause} on the
   * source after its whole postcopy stream went out, while it waited for the destination's SHUT,
   * left it postcopy-paused for good: the destination had everything, completed, and refused
   * {@code migrate-recover}. The pause is refused then, and the migration completes. The return path
   * is held by the proxy, so the source is caught waiting for SHUT.
   */
  @Test
  void aPauseAfterTheWholeStreamWasSentIsRefusedAndTheMigrationCompletes() throws Exception {
    try (Pair p = new Pair()) {
      Thread.sleep(200);
      p.s.execute("migrate-set-capabilities", caps("postcopy-ram"));
      p.s.execute("migrate-set-parameters", F.objectNode().put("max-bandwidth", 1 << 20).put("downtime-limit", 1));
      try (CutProxy proxy = CutProxy.start(p.incoming, dir.resolve("proxy1.sock"), Long.MAX_VALUE)) {
        proxy.holdReturn(true); // SHUT stays in the proxy; the source needs nothing else from it here
        p.s.execute("migrate", F.objectNode().put("uri", proxy.listenUri()));
        p.s.execute("migrate-start-postcopy");
        await("destination completed", () -> status(p.d).equals("completed"));
        assertThat(status(p.s)).as("the source waits for SHUT").isEqualTo("postcopy-active");
        assertThatThrownBy(() -> p.s.execute("migrate-pause"))
            .hasMessageContaining("the whole postcopy stream has been sent");
        proxy.holdReturn(false);
        await("source completed", () -> status(p.s).equals("completed"));
      }
      JsonNode sd = p.s.execute("ferry-memory-digest");
      JsonNode dd = p.d.execute("ferry-memory-digest");
      assertThat(dd.path("ram").asText()).isEqualTo(sd.path("ram").asText());
      assertThat(dd.path("devices").asText()).isEqualTo(sd.path("devices").asText());
      p.failed = false;
    }
  }

  @Test
  void sourceKilledWhilePausedLeavesTheDestinationPausedWithAClearError() throws Exception {
    long seed = Long.getLong("ferry.seed", 10);
    long cut = 1 + (long) (new Random(seed + 1).nextDouble() * (4 << 20));
    try (Pair p = new Pair()) {
      Thread.sleep(200);
      CutProxy proxy = p.migrateThroughCut(cut);
      p.awaitBothPaused();
      assertThat(proxy.cut()).isTrue();
      p.src.process().destroyForcibly();
      assertThat(p.src.waitFor(Duration.ofSeconds(30))).isNotZero();
      // the destination does not notice anything more: it stays paused, its monitor answers
      String at = p.recover();
      assertThat(at).isNotEmpty();
      JsonNode dm = p.d.execute("query-migrate");
      assertThat(dm.path("status").asText()).isEqualTo("postcopy-paused");
      assertThat(dm.path("error-desc").asText())
          .contains("postcopy paused after the guest started here")
          .contains("pages are still missing")
          .contains("migrate-recover");
      assertThat(p.d.execute("query-status").path("status").asText()).isEqualTo("paused");
      assertThatThrownBy(() -> p.d.execute("cont")).hasMessageContaining("paused");
      assertThatThrownBy(() -> p.d.execute("ferry-memory-digest")).hasMessageContaining("incoming migration");
      assertThat(p.dst.process().isAlive()).isTrue();
      assertThat(p.dst.stderr()).contains("paused");
      p.failed = false;
    }
  }
}
