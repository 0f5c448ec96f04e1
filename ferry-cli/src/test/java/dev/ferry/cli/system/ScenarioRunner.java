package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.io.IOException;
import java.time.Duration;

/**
 * Runs a {@link Scenario} with two {@code ferry run} processes: destination started paused (so its
 * memory can be checked exactly as it arrived), source running its program, migrate, then check
 * the destination: its exact digest (RAM and device state) equals the stopped source's, for every
 * program, and for {@code stress} the pattern holds too; then resume it and see the program run on
 * (a new serial {@code B} for stress; for random a RAM digest that changes).
 */
final class ScenarioRunner {
  static final Duration MIGRATION_TIMEOUT = Duration.ofMinutes(3);

  private ScenarioRunner() {}

  static LiveMigration.Spec spec(Scenario s) {
    return new LiveMigration.Spec(
        s.memoryBytes(), s.program(), s.transport(), s.maxBandwidthBytesPerSec(), null, null, s.xbzrle(), true);
  }

  static void run(Scenario s) throws Exception {
    withLogs(new LiveMigration(spec(s), false), lm -> runIn(lm, s));
  }

  /** What a test does with the two processes of a {@link LiveMigration}. */
  @FunctionalInterface
  interface Body {
    void run(LiveMigration lm) throws Exception;
  }

  /** Runs {@code body} with {@code lm}, then closes it; on a failure the processes' logs go to stderr first. */
  static void withLogs(LiveMigration lm, Body body) throws Exception {
    try (lm) {
      try {
        body.run(lm);
      } catch (Throwable t) {
        dumpLogs(lm);
        throw t;
      }
    }
  }

  private static void dumpLogs(LiveMigration lm) {
    for (FerryChild c : new FerryChild[] {lm.source(), lm.destination()}) {
      if (c != null) {
        System.err.println("---- " + c + " log (exit " + c.exitCodeNow() + ")");
        c.lines().stream().skip(Math.max(0, c.lines().size() - 40)).forEach(System.err::println);
      }
    }
  }

  private static void runIn(LiveMigration lm, Scenario s) throws Exception {
    boolean file = s.transport() == Transport.FILE;
    if (!file) {
      lm.startDestination();
    }
    lm.startSource();
    warmUp(lm, s.program());
    lm.migrate();
    MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), MIGRATION_TIMEOUT, null);
    assertThat(end.status().qapiName()).as("migration of %s: %s", s, end.errorDesc()).isEqualTo("completed");
    // "completed" comes a moment before the run state moves on from finish-migrate (as in QEMU)
    awaitRunState(lm.source(), "postmigrate");
    if (file) {
      lm.startDestination();
    }
    checkDestinationAndRunOn(lm, s.program());
  }

  /**
   * Once the destination loaded: its memory and device state exactly the stopped source's ({@link
   * #checkMemory}), then resumed, it runs the program on ({@link #checkRunsOn}).
   */
  static void checkDestinationAndRunOn(LiveMigration lm, String program) throws Exception {
    lm.awaitDestinationLoaded(MIGRATION_TIMEOUT);
    checkMemory(lm, program);
    lm.continueDestination();
    awaitRunState(lm.destination(), "running");
    checkRunsOn(lm, program);
  }

  static void warmUp(LiveMigration lm, String program) throws InterruptedException {
    if (program.equals("stress")) {
      assertThat(lm.awaitSourcePasses(1, Duration.ofMinutes(1))).as("source stress pass").isTrue();
    } else {
      Thread.sleep(200);
    }
  }

  static void awaitRunState(FerryChild c, String want) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + MIGRATION_TIMEOUT.toNanos();
    String st;
    while (!(st = LiveMigration.runState(c)).equals(want)) {
      assertThat(System.nanoTime() - deadline).as("%s run state %s, want %s", c, st, want).isNegative();
      Thread.sleep(20);
    }
  }

  /**
   * The destination's memory and device state as they arrived (the destination is paused, the
   * source stopped): exactly the source's; for {@code stress} also the pattern.
   */
  static void checkMemory(LiveMigration lm, String program) throws Exception {
    LiveMigration.DigestComparison d = lm.compareDigests();
    assertThat(d.difference()).as("digest of the stopped source vs the destination before it ran").isNull();
    assertThat(d.source().blocks()).isNotEmpty();
    assertThat(d.source().bytes()).isGreaterThanOrEqualTo(lm.spec().memoryBytes());
    if (program.equals("stress")) {
      JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null);
      assertThat(r.path("passed").asBoolean()).as("stress check on the destination: %s", r).isTrue();
    }
  }

  static void checkRunsOn(LiveMigration lm, String program) throws Exception {
    switch (program) {
      case "stress" -> {
        long seen = lm.serialPasses(lm.destination().name());
        assertThat(lm.awaitDestinationPass(seen, Duration.ofMinutes(1))).as("a new B on the destination's serial").isTrue();
      }
      case "random" -> {
        String before = LiveMigration.digest(lm.destination()).ram();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (LiveMigration.digest(lm.destination()).ram().equals(before)) {
          assertThat(System.nanoTime() - deadline).as("random guest changes memory on the destination").isNegative();
          Thread.sleep(50);
        }
      }
      default -> assertThat(LiveMigration.runState(lm.destination())).isEqualTo("running");
    }
  }
}
