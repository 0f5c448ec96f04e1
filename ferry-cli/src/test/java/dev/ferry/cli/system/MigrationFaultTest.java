package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.time.Duration;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Kills the destination process at seeded random moments of a live migration (a fraction of the
 * guest's RAM sent, at a bandwidth limit that makes the migration last a while): the source reports
 * {@code failed} with an {@code error-desc} over QMP, keeps its guest running, and a new migration
 * to a fresh destination (started paused) completes with its exact digest equal to the stopped
 * source's before its guest runs, the stress pattern intact, and the guest running on.
 */
@Timeout(300)
class MigrationFaultTest {
  static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  static Stream<Transport> transports() {
    return Stream.of(Transport.TCP, Transport.UNIX);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("transports")
  void killedDestinationLeavesSourceRunningAndRetrySucceeds(Transport t) throws Exception {
    killRounds(t, 2, SEED);
  }

  @Tag("slow")
  @ParameterizedTest(name = "{0}")
  @MethodSource("transports")
  void manyKillPoints(Transport t) throws Exception {
    killRounds(t, 10, SEED + 1);
  }

  static void killRounds(Transport t, int kills, long seed) throws Exception {
    System.out.println("MigrationFaultTest seed " + seed + " (-Dferry.seed=" + seed + ")");
    Random rnd = new Random(seed);
    LiveMigration.Spec spec =
        new LiveMigration.Spec(64L << 20, "stress", t, 128L << 20, null, null, false, true);
    ScenarioRunner.withLogs(new LiveMigration(spec, false), lm -> {
      lm.startDestination();
      lm.startSource();
      ScenarioRunner.warmUp(lm, "stress");
      for (int k = 0; k < kills; k++) {
        double fraction = 0.02 + 0.9 * rnd.nextDouble();
        lm.migrate();
        long total = spec.memoryBytes();
        MigrationInfo info;
        do {
          info = lm.queryMigrate();
          if (info.ram() != null && info.ram().transferredBytes() >= fraction * total) {
            break;
          }
          Thread.sleep(2);
        } while (info.status() == null || !isFinal(info));
        assertThat(info.status().qapiName()).as("kill point %.2f reached before the end", fraction).isNotEqualTo("completed");
        lm.destination().kill();
        MigrationInfo end = lm.awaitEnd(Duration.ofMillis(20), Duration.ofMinutes(1), null);
        assertThat(end.status().qapiName()).as("after killing the destination at %.0f%%", fraction * 100).isEqualTo("failed");
        assertThat(end.errorDesc()).isNotBlank();
        assertThat(LiveMigration.runState(lm.source())).isEqualTo("running");
        long passes = lm.serialPasses("source");
        assertThat(lm.awaitSourcePasses(passes + 1, Duration.ofMinutes(1))).as("source guest runs on").isTrue();
        lm.startDestination();
      }
      LiveMigration.execute(lm.source().qmp(), "migrate-set-parameters",
          com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode().put("max-bandwidth", 16L << 30));
      lm.migrate();
      MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
      assertThat(end.status().qapiName()).as("retry: %s", end.errorDesc()).isEqualTo("completed");
      ScenarioRunner.checkDestinationAndRunOn(lm, "stress");
    });
  }

  private static boolean isFinal(MigrationInfo i) {
    String s = i.status().qapiName();
    return s.equals("completed") || s.equals("failed") || s.equals("cancelled");
  }
}
