package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Auto-converge's vCPU throttle with a fake clock: each vCPU sleeps its share of every 10 ms slice. */
class CpuThrottleTest {
  private static final long MS = 1_000_000L;
  private long nowNs = 5_000 * MS;
  private final List<Long> sleeps = new ArrayList<>();
  private final CpuThrottle throttle = new CpuThrottle(() -> nowNs, n -> {
    sleeps.add(n);
    nowNs += n;
  });

  /** Runs guest steps of {@code stepMs} for {@code totalMs} at {@code percent}. */
  private void run(int percent, long stepMs, long totalMs) {
    for (long t = 0; t < totalMs; t += stepMs) {
      nowNs += stepMs * MS;
      throttle.afterStep(percent);
    }
  }

  @Test
  void sleepsItsShareOfEachSlice() {
    assertThat(CpuThrottle.sleepNs(20, 10 * MS)).isEqualTo(2_500_000);
    assertThat(CpuThrottle.sleepNs(50, 10 * MS)).isEqualTo(10 * MS);
    assertThat(CpuThrottle.sleepNs(99, 10 * MS)).isEqualTo(990 * MS);
    assertThat(CpuThrottle.sleepNs(0, 10 * MS)).isZero();
    throttle.afterStep(50); // the throttle starts: the first slice begins here
    run(50, 1, 100);
    assertThat(sleeps).hasSize(10).allMatch(n -> n == 10 * MS);
    assertThat(throttle.sleptNs()).isEqualTo(100 * MS);
  }

  @Test
  void aLongStepOwesItsWholeShare() {
    throttle.afterStep(20);
    run(20, 40, 40);
    assertThat(sleeps).containsExactly(10 * MS); // 40 ms ran at 20%: 40 x 20/80
  }

  @Test
  void offMeansNoSleepAndAPauseStartsANewSlice() {
    run(0, 1, 1000);
    assertThat(sleeps).isEmpty();
    throttle.afterStep(30);
    run(30, 1, 5);
    nowNs += 60_000 * MS; // parked for a minute
    throttle.restart();
    throttle.afterStep(30);
    run(30, 1, 9);
    assertThat(sleeps).as("no catch-up for the parked time").isEmpty();
    run(30, 1, 1);
    assertThat(sleeps).hasSize(1);
    assertThat(sleeps.get(0)).isEqualTo(CpuThrottle.sleepNs(30, 10 * MS));
  }

  @Test
  void theParkingSleeperStopsWhenToldTo() {
    long start = System.nanoTime();
    CpuThrottle.parking(System::nanoTime, () -> true).sleep(60_000 * MS);
    assertThat(System.nanoTime() - start).as("returned at once, not after a minute").isLessThan(30_000 * MS);
  }
}
