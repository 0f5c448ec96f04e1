package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Postcopy between two {@code ferry run} processes, over tcp and unix, with the {@code stress},
 * {@code random} and {@code workingset} guests: a slow precopy (the guest dirties faster than the
 * bandwidth), {@code migrate-start-postcopy} once a quarter of the RAM went, completion with
 * postcopy bytes, then the destination checked in one of two ways:
 *
 * <ul>
 *   <li><b>held</b>: the destination was started with {@code --paused}, so at POSTCOPY_RUN its vCPUs
 *       stay stopped (QEMU's autostart off) until the last page arrived; its exact digest (RAM and
 *       device state) must then equal the stopped source's, the pattern check must pass, and after
 *       {@code cont} the guest runs on;
 *   <li><b>running</b>: the destination runs the guest from POSTCOPY_RUN, so its vCPUs fault the
 *       missing pages in over the return path (the source must have served page requests); once
 *       completed, its memory check ({@code ferry-stress-check}) must pass and the guest run on. The
 *       {@code random} guest has no pattern: a running destination of it is checked by completion,
 *       page requests served and its guest running on; its exactness is the held case's.
 * </ul>
 *
 * The default suite runs each program on both transports, held on one and running on the other
 * (small guests; tcp × stress held is {@code MigratePostcopyTest}); the {@code slow} matrix runs all of transport × program × held/running at 256 MiB.
 */
@Timeout(300)
class PostcopyMatrixTest {
  /** Precopy bandwidth: far below what the guests dirty, so the switch leaves most pages to postcopy. */
  static final long PRECOPY_BANDWIDTH = 32L << 20;

  record Case(Transport transport, String program, boolean held, long memoryBytes) {
    @Override
    public String toString() {
      return transport.scheme() + " × " + program + (held ? ", held destination" : ", running destination") + " ("
          + (memoryBytes >> 20) + " MiB)";
    }
  }

  /** tcp × stress with a held destination is {@code MigratePostcopyTest}'s (through {@code ferry migrate}). */
  static Stream<Case> quick() {
    return Stream.of(
        new Case(Transport.UNIX, "stress", false, 48L << 20),
        new Case(Transport.UNIX, "random", true, 48L << 20),
        new Case(Transport.TCP, "random", false, 48L << 20),
        new Case(Transport.TCP, "workingset", false, 48L << 20),
        new Case(Transport.UNIX, "workingset", true, 48L << 20));
  }

  static Stream<Case> matrix() {
    List<Case> l = new ArrayList<>();
    for (Transport t : List.of(Transport.TCP, Transport.UNIX)) {
      for (String p : List.of("stress", "random", "workingset")) {
        for (boolean held : new boolean[] {true, false}) {
          l.add(new Case(t, p, held, 256L << 20));
        }
      }
    }
    return l.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("quick")
  void postcopyBetweenProcesses(Case c) throws Exception {
    run(c);
  }

  @Tag("slow")
  @ParameterizedTest(name = "{0}")
  @MethodSource("matrix")
  void postcopyMatrix(Case c) throws Exception {
    run(c);
  }

  static LiveMigration.Spec spec(Case c) {
    LiveMigration.Spec s =
        new LiveMigration.Spec(c.memoryBytes(), c.program(), c.transport(), PRECOPY_BANDWIDTH, 1L, null, false, c.held())
            .withPostcopy(true);
    // a working set of a quarter of RAM in its middle: pages outside it are sent once, the set itself
    // is dirtied faster than any precopy pass and comes over in postcopy
    return c.program().equals("workingset") ? s.withWorkingSet(c.memoryBytes() / 4, c.memoryBytes() / 4) : s;
  }

  static void run(Case c) throws Exception {
    ScenarioRunner.withLogs(new LiveMigration(spec(c), false), lm -> runIn(lm, c));
  }

  private static void runIn(LiveMigration lm, Case c) throws Exception {
    lm.startDestinationAndSource();
    warmUp(lm, c.program());
    lm.migrate();
    awaitSent(lm, c.memoryBytes() / 4);
    lm.startPostcopy();
    MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
    assertThat(end.status().qapiName()).as("%s: %s", c, end.errorDesc()).isEqualTo("completed");
    assertThat(end.ram().postcopyBytes()).as("pages went after the switch").isPositive();
    // the switch came with at least half of RAM never sent: postcopy, not a precopy that converged
    assertThat(end.ram().precopyBytes()).isLessThan(c.memoryBytes() * 3 / 4);
    ScenarioRunner.awaitRunState(lm.source(), "postmigrate");
    awaitDestinationCompleted(lm);
    if (c.held()) {
      lm.awaitDestinationLoaded(ScenarioRunner.MIGRATION_TIMEOUT);
      LiveMigration.DigestComparison d = lm.compareDigests();
      assertThat(d.difference()).as("digest of the stopped source vs the held destination").isNull();
      assertThat(d.source().bytes()).isGreaterThanOrEqualTo(c.memoryBytes());
      checkPattern(lm, c.program());
      lm.continueDestination();
    } else {
      assertThat(end.ram().postcopyRequests()).as("the running destination faulted pages in").isPositive();
      checkPattern(lm, c.program());
    }
    ScenarioRunner.awaitRunState(lm.destination(), "running");
    ScenarioRunner.checkRunsOn(lm, c.program());
    if (!c.program().equals("random")) {
      checkPattern(lm, c.program()); // once more after it ran on
    }
    // the source never runs the guest again
    assertThatThrownBy(() -> LiveMigration.execute(lm.source().qmp(), "cont", null))
        .hasMessageContaining("the guest now lives on the destination");
  }

  /** Before the migration: stress and workingset past their first pass (workingset filled RAM). */
  static void warmUp(LiveMigration lm, String program) throws InterruptedException {
    if (program.equals("random")) {
      Thread.sleep(200);
    } else {
      assertThat(lm.awaitSourcePasses(1, Duration.ofMinutes(1))).as("source %s pass", program).isTrue();
    }
  }

  /** Waits until the source sent {@code bytes} in precopy (status active). */
  static void awaitSent(LiveMigration lm, long bytes) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + ScenarioRunner.MIGRATION_TIMEOUT.toNanos();
    while (true) {
      MigrationInfo i = lm.queryMigrate();
      String st = i.status() == null ? "none" : i.status().qapiName();
      assertThat(st).as("precopy still running before the switch").isIn("setup", "active");
      if (st.equals("active") && i.ram() != null && i.ram().transferredBytes() >= bytes) {
        return;
      }
      assertThat(System.nanoTime() - deadline).as("%d bytes sent", bytes).isNegative();
      Thread.sleep(10);
    }
  }

  static void awaitDestinationCompleted(LiveMigration lm) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + ScenarioRunner.MIGRATION_TIMEOUT.toNanos();
    MigrationInfo i;
    while (!(i = lm.queryDestinationMigrate()).status().qapiName().equals("completed")) {
      assertThat(i.status().qapiName()).as("destination: %s", i.errorDesc()).isIn("active", "postcopy-active");
      assertThat(System.nanoTime() - deadline).as("destination completed").isNegative();
      Thread.sleep(20);
    }
    assertThat(i.postcopyBlocktimeMs()).as("postcopy-blocktime of the completed destination").isNotNull();
  }

  /** The destination's {@code ferry-stress-check}: stress's and workingset's rules (random has none). */
  static void checkPattern(LiveMigration lm, String program) throws IOException, InterruptedException {
    if (program.equals("random")) {
      return;
    }
    JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null);
    assertThat(r.path("passed").asBoolean()).as("%s check on the destination: %s", program, r).isTrue();
    assertThat(r.path("pages-checked").asLong()).isGreaterThanOrEqualTo(lm.spec().memoryBytes() / 4096);
  }

  /**
   * For the kills below: a running destination of a 48 MiB stress guest, the switch
   * after 4 MiB went, postcopy itself slow too (1 MiB/s: the kill surely comes before the last page).
   * Returns the test's deadline once the destination runs the guest in postcopy.
   */
  private static long runningInPostcopy(LiveMigration lm) throws Exception {
    lm.startDestinationAndSource();
    warmUp(lm, "stress");
    LiveMigration.execute(lm.source().qmp(), "migrate-set-parameters",
        JsonNodeFactory.instance.objectNode().put("max-postcopy-bandwidth", 1L << 20));
    lm.migrate();
    awaitSent(lm, 4L << 20);
    lm.startPostcopy();
    long deadline = System.nanoTime() + ScenarioRunner.MIGRATION_TIMEOUT.toNanos();
    while (!(lm.queryDestinationMigrate().status().qapiName().equals("postcopy-active")
        && LiveMigration.runState(lm.destination()).equals("running"))) {
      assertThat(System.nanoTime() - deadline).as("destination runs in postcopy").isNegative();
      Thread.sleep(5);
    }
    return deadline;
  }

  /**
   * The source process killed (SIGKILL) while the guest runs on the destination in postcopy with most
   * of its RAM missing: the destination goes to {@code postcopy-paused} with an {@code error-desc}
   * that says how to recover (migrate-recover), its vCPU stays parked on a missing page (the stress guest's
   * serial shows no new pass), and its monitor keeps answering (and refuses what would need the
   * parked vCPUs: {@code stop}, the memory check).
   */
  @Test
  void sourceKilledAfterTheSwitchLeavesTheDestinationPausedWithItsMonitorUp() throws Exception {
    ScenarioRunner.withLogs(new LiveMigration(spec(new Case(Transport.TCP, "stress", false, 48L << 20)), false), lm -> {
      long deadline = runningInPostcopy(lm);
      lm.source().kill();
      MigrationInfo i;
      while (!(i = lm.queryDestinationMigrate()).status().qapiName().equals("postcopy-paused")) {
        assertThat(i.status().qapiName()).as("destination after the kill").isEqualTo("postcopy-active");
        assertThat(System.nanoTime() - deadline).as("destination postcopy-paused").isNegative();
        Thread.sleep(10);
      }
      assertThat(i.errorDesc()).contains("postcopy recovery").contains("migrate-recover");
      assertThat(lm.destination().alive()).isTrue();
      // the guest waits on a page that will not come: no new pass while the monitor answers
      long passes = lm.serialPasses(lm.destination().name());
      assertThat(lm.awaitDestinationPass(passes, Duration.ofSeconds(1))).as("a parked guest makes no pass").isFalse();
      assertThat(LiveMigration.runState(lm.destination())).isEqualTo("running");
      assertThatThrownBy(() -> LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null))
          .hasMessageContaining("the incoming postcopy migration is paused");
      assertThat(lm.queryDestinationMigrate().status().qapiName()).isEqualTo("postcopy-paused");
    });
  }

  /**
   * The destination process killed (SIGKILL) while the guest runs there in postcopy: the source
   * goes to {@code postcopy-paused} with an error saying so, stays stopped, refuses {@code cont},
   * and is still paused a while later (it never resumes the stale guest).
   */
  @Test
  void destinationKilledAfterTheSwitchLeavesTheSourcePausedForGood() throws Exception {
    ScenarioRunner.withLogs(new LiveMigration(spec(new Case(Transport.UNIX, "stress", false, 48L << 20)), false), lm -> {
      long deadline = runningInPostcopy(lm);
      lm.destination().kill();
      MigrationInfo i;
      while (!(i = lm.queryMigrate()).status().qapiName().equals("postcopy-paused")) {
        assertThat(i.status().qapiName()).as("source after the kill").isEqualTo("postcopy-active");
        assertThat(System.nanoTime() - deadline).as("source postcopy-paused").isNegative();
        Thread.sleep(10);
      }
      assertThat(i.errorDesc()).contains("guest now runs on the destination");
      assertThat(LiveMigration.runState(lm.source())).isEqualTo("postmigrate");
      assertThatThrownBy(() -> LiveMigration.execute(lm.source().qmp(), "cont", null))
          .hasMessageContaining("the guest now lives on the destination");
      // a second look after the source's serial would have shown a pass: still stopped, still paused
      long passes = lm.serialPasses("source");
      assertThat(lm.awaitSourcePasses(passes + 1, Duration.ofSeconds(1))).as("source guest never runs again").isFalse();
      assertThat(lm.queryMigrate().status().qapiName()).isEqualTo("postcopy-paused");
      assertThat(LiveMigration.runState(lm.source())).isEqualTo("postmigrate");
    });
  }
}
