package dev.ferry.cli.system;

import dev.ferry.cli.live.LiveMigration.Transport;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The process-level scenario matrix: every transport × every program (stress, random, fill, idle),
 * each a destination and a source process of {@code ferry run}, a live migration over QMP, the
 * destination's exact digest (before its guest ran) compared with the stopped source's, the stress
 * pattern where it applies, and the guest running on.
 */
@Timeout(300)
class MigrationMatrixTest {
  static Stream<Scenario> matrix() {
    List<Scenario> l = new ArrayList<>();
    for (Transport t : Transport.values()) {
      for (String p : List.of("stress", "random", "fill", "idle")) {
        l.add(Scenario.of(t, p));
      }
    }
    return l.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("matrix")
  void migrates(Scenario s) throws Exception {
    ScenarioRunner.run(s);
  }

  static Stream<Scenario> heavier() {
    return Stream.of(
        Scenario.of(Transport.TCP, "stress").withMemory(512L << 20),
        Scenario.of(Transport.UNIX, "random").withMemory(512L << 20).withXbzrle(),
        Scenario.of(Transport.TCP, "fill").withMemory(256L << 20),
        Scenario.of(Transport.FD, "stress").withMemory(256L << 20).withXbzrle());
  }

  @Tag("slow")
  @ParameterizedTest(name = "{0}")
  @MethodSource("heavier")
  void migratesBiggerGuests(Scenario s) throws Exception {
    ScenarioRunner.run(s);
  }
}
