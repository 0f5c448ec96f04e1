package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.SwitchOverPolicy.Action;
import dev.ferry.migration.SwitchOverPolicy.Decision;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Issue 10 item 5: the switch-over policy (threshold, auto-converge steps, the opt-in postcopy
 * switch, the downtime guard, the budget) driven with a fake clock and synthetic dirty and transfer
 * figures.
 */
class SwitchOverPolicyTest {
  private static final long MS = 1_000_000L;
  private static final long MIB = 1L << 20;
  /** 10 MB/s: with the default 300 ms downtime limit the threshold is 3,000,000 bytes. */
  private static final double BW = 10_000;

  private long nowNs = 1_000 * MS;
  private long sent;

  private static MigrationParameters params(Map<String, ?> changes) {
    return MigrationParameters.DEFAULT.apply(changes);
  }

  private SwitchOverPolicy policy(boolean autoConverge, boolean postcopyRam, boolean autoPostcopy, boolean file) {
    SwitchOverPolicy p = new SwitchOverPolicy(nowNs, autoConverge, postcopyRam, autoPostcopy, file);
    p.totalRamBytes(64 * MIB);
    return p;
  }

  /** One sync after {@code ms} of sending at {@code sendBytesPerMs}, which found {@code dirtiedPages}. */
  private Decision sync(SwitchOverPolicy p, long ms, long sendBytesPerMs, long pending, long dirtiedPages, MigrationParameters mp) {
    nowNs += ms * MS;
    sent += ms * sendBytesPerMs;
    return p.afterSync(nowNs, pending, dirtiedPages, sent, BW, mp);
  }

  @Test
  void syncsWhenTheEstimateFitsAndCompletesWhenTheRestIsSmall() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(SwitchOverPolicy.thresholdBytes(BW, mp)).isEqualTo(3_000_000);
    assertThat(p.check(nowNs, 3_000_001, BW, sent, mp, false)).isEqualTo(Decision.ITERATE);
    assertThat(p.check(nowNs, 3_000_000, BW, sent, mp, false)).isEqualTo(Decision.SYNC);
    assertThat(sync(p, 100, 10_000, 100_000, 20, mp).action()).isEqualTo(Action.COMPLETE);
  }

  @Test
  void keepsIteratingWhileEachSyncStillShrinksTheRest() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(sync(p, 100, 10_000, 2_000_000, 500, mp).action()).as("first fit").isEqualTo(Action.ITERATE);
    // after the first fit, a sync only once the round drained the bitmap
    assertThat(p.check(nowNs, 1_000_000, BW, sent, mp, false)).isEqualTo(Decision.ITERATE);
    assertThat(p.check(nowNs, 0, BW, sent, mp, false)).isEqualTo(Decision.SYNC);
    assertThat(sync(p, 100, 10_000, 1_000_000, 250, mp).action()).as("halved").isEqualTo(Action.ITERATE);
    assertThat(sync(p, 100, 10_000, 950_000, 240, mp).action()).as("shrank by under 10%").isEqualTo(Action.COMPLETE);
  }

  @Test
  void aDowntimeLimitRaisedMidMigrationCountsAtTheNextCheck() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(p.check(nowNs, 5_000_000, BW, sent, mp, false)).isEqualTo(Decision.ITERATE);
    MigrationParameters raised = params(Map.of("downtime-limit", 600L));
    assertThat(p.check(nowNs, 5_000_000, BW, sent, raised, false)).isEqualTo(Decision.SYNC);
    assertThat(sync(p, 100, 10_000, 5_500_000, 1300, mp).action()).as("still the old limit").isEqualTo(Action.ITERATE);
    assertThat(sync(p, 100, 10_000, 5_500_000, 1300, raised).action()).as("first fit under the new one").isEqualTo(Action.ITERATE);
    assertThat(sync(p, 100, 10_000, 5_400_000, 1300, raised).action()).isEqualTo(Action.COMPLETE);
  }

  @Test
  void autoConvergeThrottlesAtTheSecondHighPeriodAndStepsUpToTheCap() {
    SwitchOverPolicy p = policy(true, false, false, false);
    MigrationParameters mp = params(Map.of("max-cpu-throttle", 45L));
    long pending = 64 * MIB;
    // 10 MB/s sent, 20 MB/s dirtied: far above the 50% trigger. Syncs every 250 ms; a period is >= 1 s.
    for (int i = 0; i < 3; i++) {
      sync(p, 250, 10_000, pending, 20_000L * 250 / 4096, mp);
      assertThat(p.throttlePercent()).as("within the first period").isZero();
    }
    sync(p, 250, 10_000, pending, 20_000L * 250 / 4096, mp); // 1 s: first strike
    assertThat(p.throttlePercent()).isZero();
    for (int i = 0; i < 4; i++) {
      sync(p, 250, 10_000, pending, 20_000L * 250 / 4096, mp);
    }
    assertThat(p.throttlePercent()).as("second strike: cpu-throttle-initial").isEqualTo(20);
    for (int i = 0; i < 8; i++) {
      sync(p, 250, 10_000, pending, 20_000L * 250 / 4096, mp);
    }
    assertThat(p.throttlePercent()).as("two more strikes: + cpu-throttle-increment").isEqualTo(30);
    for (int i = 0; i < 40; i++) {
      sync(p, 250, 10_000, pending, 20_000L * 250 / 4096, mp);
    }
    assertThat(p.throttlePercent()).as("capped at max-cpu-throttle").isEqualTo(45);
  }

  @Test
  void strikesNeedNotBeConsecutiveAndALowPeriodIsNoStrike() {
    SwitchOverPolicy p = policy(true, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    long high = 20_000L * 1000 / 4096; // 20 MB dirtied in 1 s, 10 MB sent
    long low = 2_000L * 1000 / 4096; // 2 MB: under 50% of 10 MB
    sync(p, 1000, 10_000, 64 * MIB, high, mp);
    sync(p, 1000, 10_000, 64 * MIB, low, mp);
    sync(p, 1000, 10_000, 64 * MIB, low, mp);
    assertThat(p.throttlePercent()).isZero();
    sync(p, 1000, 10_000, 64 * MIB, high, mp);
    assertThat(p.throttlePercent()).isEqualTo(20);
  }

  @Test
  void withoutTheCapabilityNothingIsThrottled() {
    SwitchOverPolicy p = policy(false, false, false, false);
    for (int i = 0; i < 20; i++) {
      sync(p, 1000, 10_000, 64 * MIB, 20_000L * 1000 / 4096, MigrationParameters.DEFAULT);
    }
    assertThat(p.throttlePercent()).isZero();
  }

  @Test
  void tailslowTakesSmallerStepsNearTheTarget() {
    MigrationParameters mp = params(Map.of("cpu-throttle-tailslow", true));
    assertThat(SwitchOverPolicy.nextThrottle(0, 200, 150, mp)).isEqualTo(20);
    // cpu now 50%; ideal 50 x 150/200 = 37 -> step min(13, 10) = 10
    assertThat(SwitchOverPolicy.nextThrottle(50, 200, 150, mp)).isEqualTo(60);
    // ideal 50 x 150/160 = 46 -> step 4
    assertThat(SwitchOverPolicy.nextThrottle(50, 160, 150, mp)).isEqualTo(54);
    assertThat(SwitchOverPolicy.nextThrottle(50, 160, 150, MigrationParameters.DEFAULT)).as("without tailslow").isEqualTo(60);
    assertThat(SwitchOverPolicy.nextThrottle(95, 1000, 10, MigrationParameters.DEFAULT)).as("max-cpu-throttle 99").isEqualTo(99);
  }

  @Test
  void aStalledDirtySetIsNotConvergingWithTheFiguresAndSwitchesToPostcopyWhenAllowed() {
    SwitchOverPolicy off = policy(false, true, false, false);
    SwitchOverPolicy on = policy(false, true, true, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    long pending = 48 * MIB; // the working set, dirtied again every pass
    long dirtied = pending / 4096;
    Decision d = null;
    for (int i = 0; i <= SwitchOverPolicy.STALL_SYNCS; i++) {
      assertThat(off.convergence().converging()).isTrue();
      nowNs += 500 * MS;
      sent += 5_000_000;
      off.afterSync(nowNs, pending, dirtied, sent, BW, mp);
      d = on.afterSync(nowNs, pending, dirtied, sent, BW, mp);
      if (i < SwitchOverPolicy.STALL_SYNCS) {
        assertThat(d.action()).isEqualTo(Action.ITERATE);
      }
    }
    assertThat(d.action()).isEqualTo(Action.POSTCOPY);
    assertThat(d.reason()).startsWith("precopy is not converging: the guest dirties 101 MB/s, 10 MB/s sent");
    SwitchOverPolicy.Convergence c = off.convergence();
    assertThat(c.converging()).isFalse();
    assertThat(c.dirtyBytesPerSec()).isEqualTo(pending * 2);
    assertThat(c.transferBytesPerSec()).isEqualTo(10_000_000);
    assertThat(c.reason()).contains("not converging", "no smaller dirty set for 4 passes");
    assertThat(off.afterSync(nowNs + 500 * MS, pending, dirtied, sent + 5_000_000, BW, mp).action())
        .as("without ferry-auto-postcopy precopy goes on").isEqualTo(Action.ITERATE);
  }

  @Test
  void aShrinkingDirtySetIsConvergingEvenAboveTheThreshold() {
    SwitchOverPolicy p = policy(false, true, true, false);
    long pending = 64 * MIB;
    for (int i = 0; i < 20; i++) {
      pending = pending * 9 / 10;
      assertThat(sync(p, 100, 10_000, pending, pending / 4096, MigrationParameters.DEFAULT).action()).isEqualTo(Action.ITERATE);
      assertThat(p.notConverging()).isFalse();
    }
  }

  @Test
  void postcopyRequestedSwitchesOnlyWhenTheRestDoesNotFit() {
    SwitchOverPolicy p = policy(false, true, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(p.check(nowNs, 64 * MIB, BW, sent, mp, true).action()).isEqualTo(Action.POSTCOPY);
    assertThat(p.check(nowNs, 1_000_000, BW, sent, mp, true)).isEqualTo(Decision.SYNC);
    SwitchOverPolicy noRam = policy(false, false, false, false);
    assertThat(noRam.check(nowNs, 64 * MIB, BW, sent, mp, true)).isEqualTo(Decision.ITERATE);
  }

  @Test
  void thePassBudgetFailsWithItsReasonOrSwitchesToPostcopy() {
    MigrationParameters mp = params(Map.of("ferry-precopy-max-passes", 3L));
    SwitchOverPolicy fail = policy(false, false, false, false);
    SwitchOverPolicy post = policy(false, true, true, false);
    Decision f = null;
    Decision q = null;
    for (int i = 0; i < 3; i++) {
      nowNs += 100 * MS;
      sent += 1_000_000;
      f = fail.afterSync(nowNs, 64 * MIB, 1000, sent, BW, mp);
      q = post.afterSync(nowNs, 64 * MIB, 1000, sent, BW, mp);
    }
    assertThat(f.action()).isEqualTo(Action.FAIL);
    assertThat(f.reason()).startsWith("precopy used its budget of 3 passes (ferry-precopy-max-passes); ")
        .contains("MB/s sent");
    assertThat(q.action()).isEqualTo(Action.POSTCOPY);
    assertThat(fail.check(nowNs, 64 * MIB, BW, sent, mp, false).action()).as("checked between syncs too")
        .isEqualTo(Action.FAIL);
  }

  @Test
  void theTimeBudgetRunsOnTheClock() {
    MigrationParameters mp = params(Map.of("ferry-precopy-max-time", 2000L));
    SwitchOverPolicy p = policy(false, false, false, false);
    assertThat(p.check(nowNs + 1999 * MS, 64 * MIB, BW, sent, mp, false)).isEqualTo(Decision.ITERATE);
    Decision d = p.check(nowNs + 2000 * MS, 64 * MIB, BW, sent, mp, false);
    assertThat(d.action()).isEqualTo(Action.FAIL);
    assertThat(d.reason()).isEqualTo("precopy used its budget of 2000 ms (ferry-precopy-max-time)");
    assertThat(p.check(nowNs + 5000 * MS, 1000, BW, sent, mp, false)).as("a rest that fits still syncs")
        .isEqualTo(Decision.SYNC);
  }

  @Test
  void aFileMigrationGetsThreeTimesRamUnlessTheByteBudgetIsSet() {
    SwitchOverPolicy file = policy(false, false, false, true);
    SwitchOverPolicy socket = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(file.byteBudget(mp)).isEqualTo(3 * 64 * MIB);
    assertThat(socket.byteBudget(mp)).isZero();
    assertThat(file.check(nowNs, 64 * MIB, BW, 3 * 64 * MIB - 1, mp, false)).isEqualTo(Decision.ITERATE);
    Decision d = file.check(nowNs, 64 * MIB, BW, 3 * 64 * MIB, mp, false);
    assertThat(d.action()).isEqualTo(Action.FAIL);
    assertThat(d.reason()).isEqualTo("precopy used its budget of 201326592 bytes (3 x RAM for a file: migration)");
    assertThat(socket.check(nowNs, 64 * MIB, BW, 100 * 64 * MIB, mp, false)).isEqualTo(Decision.ITERATE);
    MigrationParameters set = params(Map.of("ferry-precopy-max-bytes", 10 * MIB));
    assertThat(socket.check(nowNs, 64 * MIB, BW, 10 * MIB, set, false).reason())
        .isEqualTo("precopy used its budget of 10485760 bytes (ferry-precopy-max-bytes)");
  }

  @Test
  void theDowntimeGuardRefusesARestThatNoLongerFitsAndTheSearchStartsAgain() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    assertThat(sync(p, 100, 10_000, 2_000_000, 500, mp).action()).isEqualTo(Action.ITERATE);
    assertThat(sync(p, 100, 10_000, 1_900_000, 500, mp).action()).isEqualTo(Action.COMPLETE);
    // stopped, the rest is 2.5 MB, but the rate fell to 5 MB/s: 500 ms > 300 ms
    assertThat(p.switchOverFits(2_500_000, 5_000, mp)).isFalse();
    assertThat(p.guardRefusals()).isEqualTo(1);
    assertThat(p.check(nowNs, 2_000_000, BW, sent, mp, false)).as("the first fit again").isEqualTo(Decision.SYNC);
    assertThat(p.switchOverFits(2_500_000, BW, mp)).as("at 10 MB/s it fits").isTrue();
    assertThat(p.switchOverFits(100_000, 1, mp)).as("a rest under 64 pages always goes").isTrue();
  }

  @Test
  void theGuardCountsEachRefusalOnceAndStatsReportThePolicysCount() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    MigrationStats stats = new MigrationStats();
    assertThat(stats.snapshot(0, nowNs).guardExpectedDowntimeMs()).as("no check yet").isEqualTo(-1);
    assertThat(p.switchOverFits(2_500_000, 5_000, mp)).isFalse();
    stats.convergence = p.convergence(); // what the migration thread does after each guard check
    MigrationStats.Snapshot one = stats.snapshot(0, nowNs);
    assertThat(one.downtimeGuardRefusals()).isEqualTo(1);
    assertThat(one.guardExpectedDowntimeMs()).isEqualTo(500);
    assertThat(one.guardRefused()).isTrue();
    assertThat(p.switchOverFits(2_500_000, 5_000, mp)).isFalse();
    assertThat(p.switchOverFits(1_000_000, 5_000, mp)).isTrue();
    stats.convergence = p.convergence();
    MigrationStats.Snapshot three = stats.snapshot(0, nowNs);
    assertThat(three.downtimeGuardRefusals()).isEqualTo(2);
    assertThat(three.guardExpectedDowntimeMs()).isEqualTo(200);
    assertThat(three.guardRefused()).isFalse();
  }

  @Test
  void theGuardReadsTheDowntimeLimitAndRateOfTheMoment() {
    SwitchOverPolicy p = policy(false, false, false, false);
    // 2.5 MB at 5 MB/s: 500 ms
    assertThat(p.switchOverFits(2_500_000, 5_000, MigrationParameters.DEFAULT)).as("over 300 ms").isFalse();
    MigrationParameters raised = params(Map.of("downtime-limit", 600L));
    assertThat(p.switchOverFits(2_500_000, 5_000, raised)).as("a limit raised since counts at once").isTrue();
    MigrationParameters lowered = params(Map.of("downtime-limit", 100L));
    assertThat(p.switchOverFits(2_500_000, BW, lowered)).as("and one lowered: 250 ms > 100 ms").isFalse();
    assertThat(p.guardRefusals()).isEqualTo(2);
  }

  @Test
  void theDirtyRateIsComputedOnceAtEachSyncFromTheClock() {
    SwitchOverPolicy p = policy(false, false, false, false);
    MigrationParameters mp = MigrationParameters.DEFAULT;
    MigrationStats stats = new MigrationStats();
    sync(p, 1000, 10_000, 64 * MIB, 2560, mp); // 2560 pages (10 MiB) in 1 s
    stats.convergence = p.convergence();
    MigrationStats.Snapshot s = stats.snapshot(0, nowNs);
    assertThat(s.dirtyBytesPerSec()).isEqualTo(10 * MIB);
    assertThat(s.dirtyPagesRate()).as("QEMU's dirty-pages-rate, from the same figure").isEqualTo(2560);
    sync(p, 500, 10_000, 64 * MIB, 2560, mp);
    stats.convergence = p.convergence();
    assertThat(stats.snapshot(0, nowNs).dirtyPagesRate()).isEqualTo(5120);
  }
}
