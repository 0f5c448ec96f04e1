package dev.ferry.machine;

import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * Auto-converge's vCPU throttle (QEMU's cpu-throttle): at {@code pct}% every vCPU, after each
 * {@value #SLICE_MS} ms it ran, sleeps {@code pct / (100 - pct)} of that time, so that it runs
 * {@code 100 - pct}% of the wall clock. One instance per vCPU; the machine's percentage is shared.
 * Sleeps happen between guest steps (never inside one, so a pause or a dirty-log flip never waits
 * for a sleeping vCPU longer than one wake-up check, {@value #CHECK_MS} ms), and end early when the
 * throttle is lifted or the vCPU must stop.
 */
final class CpuThrottle {
  static final long SLICE_MS = 10;
  static final long SLICE_NS = TimeUnit.MILLISECONDS.toNanos(SLICE_MS);
  static final long CHECK_MS = 10;

  /** How a vCPU sleeps: up to {@code nanos}; returns early when it should. */
  @FunctionalInterface
  interface Sleeper {
    void sleep(long nanos);
  }

  private final LongSupplier clockNs;
  private final Sleeper sleeper;
  private long sliceStartNs;
  private int lastPercent;
  private long sleptNs;

  CpuThrottle(LongSupplier clockNs, Sleeper sleeper) {
    this.clockNs = clockNs;
    this.sleeper = sleeper;
  }

  /** The sleep owed for {@code ranNs} of running at {@code percent}% (QEMU: pct/(1-pct) × slice). */
  static long sleepNs(int percent, long ranNs) {
    if (percent <= 0) {
      return 0;
    }
    int p = Math.min(percent, 99);
    return ranNs * p / (100 - p);
  }

  /**
   * After a guest step: when {@code percent} > 0 and the vCPU has run a whole slice since its last
   * sleep, sleeps its share.
   */
  void afterStep(int percent) {
    if (percent <= 0) {
      lastPercent = 0;
      return;
    }
    long now = clockNs.getAsLong();
    if (lastPercent == 0) {
      sliceStartNs = now; // the throttle just started: the first slice begins now
      lastPercent = percent;
      return;
    }
    lastPercent = percent;
    long ran = now - sliceStartNs;
    if (ran < SLICE_NS) {
      return;
    }
    long owed = sleepNs(percent, ran);
    sleeper.sleep(owed);
    long after = clockNs.getAsLong();
    sleptNs += after - now;
    sliceStartNs = after;
  }

  /** The vCPU was parked (paused): the next slice starts with its next step, not at the old start. */
  void restart() {
    lastPercent = 0;
  }

  /** Time this vCPU spent in throttle sleeps. */
  long sleptNs() {
    return sleptNs;
  }

  /** A sleeper that parks in {@value #CHECK_MS} ms steps and stops when {@code stop} says so. */
  static Sleeper parking(LongSupplier clockNs, BooleanSupplier stop) {
    return nanos -> {
      long end = clockNs.getAsLong() + nanos;
      long left;
      while ((left = end - clockNs.getAsLong()) > 0 && !stop.getAsBoolean()) {
        java.util.concurrent.locks.LockSupport.parkNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(CHECK_MS)));
      }
    };
  }
}
