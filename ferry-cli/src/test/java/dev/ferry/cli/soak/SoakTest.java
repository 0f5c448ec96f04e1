package dev.ferry.cli.soak;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.cli.FerryMain;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.cli.soak.SoakPlan.Fault;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The soak in the default suite: a fixed seed whose eight small runs cover every transport, every
 * program and every fault kind (each with a trigger early enough to strike; two postcopy recoveries,
 * one broken by a cut with the destination's guest running, one by {@code migrate-pause} with it
 * held, each recovery cut once more), run between
 * real {@code ferry run} processes; no data loss, no broken rule, every fault struck.
 */
class SoakTest {
  /** Eight 64 MiB runs: every transport, program and fault; see {@link #theSeedCoversEveryDimension}. */
  static final long SEED = 1123;
  static final int RUNS = 8;
  static final long MAX_MEMORY = 64L << 20;

  static List<SoakPlan> plans() {
    return java.util.stream.IntStream.range(0, RUNS)
        .mapToObj(k -> SoakPlan.draw(k, SoakPlan.runSeed(SEED, k), MAX_MEMORY))
        .toList();
  }

  @Test
  void theSeedCoversEveryDimension() {
    Set<Transport> transports = EnumSet.noneOf(Transport.class);
    Set<String> programs = new HashSet<>();
    Set<Fault> faults = EnumSet.noneOf(Fault.class);
    Set<SoakPlan.Trigger> recoveryBreaks = EnumSet.noneOf(SoakPlan.Trigger.class);
    Set<Boolean> guestRuns = new HashSet<>();
    for (SoakPlan p : plans()) {
      if (p.recovery() != null && p.recovery().secondCutBytes() > 0) {
        recoveryBreaks.add(p.trigger());
        guestRuns.add(p.recovery().guestRuns());
      }
      transports.add(p.transport());
      programs.add(p.program());
      faults.add(p.fault());
      assertThat(p.memoryBytes()).isEqualTo(MAX_MEMORY);
    }
    assertThat(transports).containsExactlyInAnyOrder(Transport.values());
    assertThat(programs).containsExactlyInAnyOrderElementsOf(SoakPlan.PROGRAMS);
    assertThat(faults).containsExactlyInAnyOrder(Fault.values());
    assertThat(recoveryBreaks).as("a cut and a pause, each recovery cut again")
        .containsExactlyInAnyOrder(SoakPlan.Trigger.CUT, SoakPlan.Trigger.PAUSE);
    assertThat(guestRuns).as("a held destination and one whose guest runs").containsExactlyInAnyOrder(true, false);
  }

  @Test
  void plansAreAFunctionOfTheRunSeedAlone() {
    for (int k = 0; k < 50; k++) {
      long s = SoakPlan.runSeed(42, k);
      assertThat(SoakPlan.draw(k, s, 1L << 30)).isEqualTo(SoakPlan.draw(k, s, 1L << 30));
      SoakPlan p = SoakPlan.draw(k, s, 1L << 30);
      assertThat(p.fault().transports()).contains(p.transport());
      assertThat(p.memoryBytes()).isBetween(64L << 20, 1L << 30);
      if (!p.transport().hasReturnPath()) {
        assertThat(p.returnPath()).isFalse();
      }
      if (p.fault() == Fault.POSTCOPY_RECOVERY) {
        assertThat(p.returnPath()).as("postcopy needs the return path").isTrue();
        assertThat(p.recovery()).isNotNull();
        assertThat(p.trigger()).isIn(SoakPlan.Trigger.CUT, SoakPlan.Trigger.PAUSE);
        assertThat(p.spec().postcopy()).isTrue();
      } else {
        assertThat(p.recovery()).isNull();
        assertThat(p.spec().postcopy()).isFalse();
      }
      if (p.maxBandwidthBytesPerSec() != null && p.dirtyRateBytesPerSec() != null) {
        assertThat(p.dirtyRateBytesPerSec()).as("a guest dirtying faster than the link never converges")
            .isLessThanOrEqualTo(p.maxBandwidthBytesPerSec() / 4);
      }
    }
    assertThat(SoakPlan.runSeed(42, 0)).isNotEqualTo(SoakPlan.runSeed(42, 1)).isNotEqualTo(SoakPlan.runSeed(43, 0));
  }

  @Test
  void aForcedFaultKeepsTheRestOfTheDrawReplayable() {
    for (int k = 0; k < 50; k++) {
      long s = SoakPlan.runSeed(7, k);
      SoakPlan p = SoakPlan.draw(k, s, 1L << 30, Fault.POSTCOPY_RECOVERY);
      assertThat(p).isEqualTo(SoakPlan.draw(k, s, 1L << 30, Fault.of("postcopy-recovery")));
      assertThat(p.fault()).isEqualTo(Fault.POSTCOPY_RECOVERY);
      assertThat(p.fault().transports()).contains(p.transport());
      assertThat(p.recovery()).isNotNull();
      assertThat(p.returnPath()).isTrue();
    }
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Fault.of("meteor"))
        .hasMessageStartingWith("unknown fault 'meteor' (none, cancel, ");
  }

  @Test
  void badOptionsFailWithOneLine() {
    PrintStream old = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    int code;
    try {
      code = FerryMain.execute("soak", "--seed", "banana");
    } finally {
      System.setErr(old);
    }
    assertThat(code).isEqualTo(2);
    // only the soak's own lines: in the full suite a fuzzing agent may log class instrumentation to stderr
    assertThat(buf.toString(StandardCharsets.UTF_8).lines().filter(l -> !l.startsWith("INFO: Instrumented ")))
        .containsExactly("ferry soak: bad --seed 'banana' (a decimal or 0x hex number)");
  }

  /** {@code bin/test -Pslow}: forty runs of up to 256 MiB, seed from {@code -Dferry.seed} (printed). */
  @Test
  @Tag("soak")
  @Timeout(7200)
  void aLongerSoakLosesNothing(@TempDir Path tmp) throws Exception {
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    SoakCommand c = soak(seed, 40, "256M", tmp.resolve("soak.jsonl"));
    String out = run(c);
    assertThat(c.summary().dataLoss()).as(out).isZero();
    assertThat(c.summary().problemRuns()).as(out).isEmpty();
  }

  private static SoakCommand soak(long seed, int runs, String maxMemory, Path jsonl) {
    SoakCommand c = new SoakCommand();
    c.runs = runs;
    c.seed = Long.toString(seed);
    c.skip = 0;
    c.maxMemory = maxMemory;
    c.jsonl = jsonl;
    return c;
  }

  private static String run(SoakCommand c) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    c.output(new PrintStream(buf, true, StandardCharsets.UTF_8));
    int code = c.call();
    String out = buf.toString(StandardCharsets.UTF_8);
    System.out.println(out);
    assertThat(code).as(out).isZero();
    return out;
  }

  @Test
  @Timeout(600)
  void aSmallSeededSoakLosesNothing(@TempDir Path tmp) throws Exception {
    Path jsonl = tmp.resolve("soak.jsonl");
    SoakCommand c = soak(SEED, RUNS, "64M", jsonl);
    String out = run(c);
    assertThat(out).startsWith("ferry soak: seed " + SEED + ";");
    SoakSummary s = c.summary();
    assertThat(s.problemRuns()).as(out).isEmpty();
    assertThat(s.dataLoss()).isZero();
    assertThat(s.runs()).isEqualTo(RUNS);
    for (Fault f : Fault.values()) {
      if (f != Fault.NONE) {
        assertThat(s.fired(f)).as("%s struck at least once:%n%s", f.label(), out).isPositive();
      }
    }
    List<String> lines = Files.readAllLines(jsonl);
    assertThat(lines).hasSize(RUNS);
    ObjectMapper m = new ObjectMapper();
    int compared = 0;
    for (String l : lines) {
      JsonNode j = m.readTree(l);
      assertThat(j.path("data-loss").asBoolean()).isFalse();
      if (j.path("fault").path("guest-runs").asBoolean(false)) {
        assertThat(j.path("outcome").asText()).as(l).isEqualTo("recovered");
        assertThat(j.path("stress-check").asBoolean(false)).as("the running destination's stress pattern in %s", l).isTrue();
      } else if (List.of("completed", "recovered").contains(j.path("outcome").asText())) {
        assertThat(j.path("digest-equal").asBoolean(false)).as("stopped source = paused destination in %s", l).isTrue();
        compared++;
      }
      if (j.has("retry")) {
        assertThat(j.path("retry").path("status").asText()).as(l).isEqualTo("completed");
        assertThat(j.path("retry-digest-equal").asBoolean(false)).as("retry: stopped source = paused destination in %s", l).isTrue();
        compared++;
      }
    }
    assertThat(compared).as("completed migrations compared").isGreaterThanOrEqualTo(RUNS / 2);
    // a postcopy that ends before its break (a fast machine) completes without recovering: no problem
    assertThat(s.recoveredRuns()).as("postcopy runs recovered:%n%s", out).isEqualTo(s.recoveryRuns()).isPositive();
    assertThat(s.recoveries()).as("each first recovery cut: two recoveries per run at least")
        .isGreaterThanOrEqualTo(2 * s.recoveryRuns());
  }
}
