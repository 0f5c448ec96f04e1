package dev.ferry.ram;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Writers enter and leave critical sections without ever waiting; a single reader flips the phase
 * and waits until every writer that entered the old phase has left it. Same protocol as
 * HdrHistogram's {@code WriterReaderPhaser} (that library is in ferry-core for postcopy's fault
 * latency only; the dirty log keeps its own copy of the protocol, next to the code that relies on
 * it): a start epoch whose sign tells the phase, and one end epoch per phase.
 *
 * <p>Guarantee: everything a writer did inside a critical section of the old phase happens-before
 * the return of {@link #flipPhase()} (the writer's exit increment is a volatile write that the
 * reader's wait loop reads). Writers entering after the flip's swap see everything the reader did
 * before the flip (their entering getAndAdd reads the swap's write or a later one).
 *
 * <p>The three epochs sit on cache lines of their own (padding through superclasses, whose fields
 * HotSpot lays out first, as JCTools and Agrona do; {@code @Contended} is closed to code outside the
 * JDK unless a flag is given): every vCPU step increments the start epoch and one end epoch, and the
 * harvester spins on an end epoch, so on one line each of these would invalidate the other's.
 */
final class StepPhaser extends StepPhaserFields.Pad3 {
  private static final VarHandle START;
  private static final VarHandle EVEN_END;
  private static final VarHandle ODD_END;

  static {
    try {
      MethodHandles.Lookup l = MethodHandles.lookup();
      START = l.findVarHandle(StepPhaserFields.Start.class, "startEpoch", long.class);
      EVEN_END = l.findVarHandle(StepPhaserFields.EvenEnd.class, "evenEndEpoch", long.class);
      ODD_END = l.findVarHandle(StepPhaserFields.OddEnd.class, "oddEndEpoch", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  StepPhaser() {
    oddEndEpoch = Long.MIN_VALUE;
  }

  /** Enters a critical section; pass the result to {@link #writerExit}. Negative means odd phase. */
  long writerEnter() {
    return (long) START.getAndAdd(this, 1L);
  }

  void writerExit(long enterValue) {
    if (enterValue < 0) {
      ODD_END.getAndAdd(this, 1L);
    } else {
      EVEN_END.getAndAdd(this, 1L);
    }
  }

  /** Phase index a writer uses for an enter value: 0 (even) or 1 (odd). */
  static int phaseOf(long enterValue) {
    return enterValue < 0 ? 1 : 0;
  }

  /** How long a flip waits for the writers of the old phase; see {@link #flipPhase()}. */
  private volatile long waitLimitNs = TimeUnit.SECONDS.toNanos(10);

  /** A flip whose wait gave up: the next flip first finishes that wait (reader-side fields). */
  private boolean pending;
  private boolean pendingNextIsEven;
  private long pendingStartAtFlip;

  void setWaitLimit(long nanos) {
    if (nanos <= 0) {
      throw new IllegalArgumentException("wait limit must be positive: " + nanos);
    }
    waitLimitNs = nanos;
  }

  /**
   * Flips the phase and waits until every writer of the old phase has left. Callers serialise
   * flips among themselves (one reader at a time).
   *
   * <p>The wait is bounded and interruptible: a writer stuck inside a step (a guest step that does
   * not return) makes it throw after the wait limit, an interrupt at once (the interrupt status is
   * kept). The phase has flipped then; the next flip first waits for the writers this one waited
   * for, so no flip ever starts while writers of the phase before are inside (that is what keeps
   * the end counts, and with them every mark, exact).
   *
   * @return the phase index (0 or 1) that just ended and is now quiescent
   * @throws IllegalStateException when the old phase's writers did not leave in time, or on an
   *     interrupt
   */
  int flipPhase() {
    if (pending) {
      awaitOldPhase(pendingNextIsEven, pendingStartAtFlip);
      pending = false;
    }
    boolean nextIsEven = (long) START.getVolatile(this) < 0;
    long initial = nextIsEven ? 0 : Long.MIN_VALUE;
    if (nextIsEven) {
      evenEndEpoch = initial;
    } else {
      oddEndEpoch = initial;
    }
    long startAtFlip = (long) START.getAndSet(this, initial);
    try {
      awaitOldPhase(nextIsEven, startAtFlip);
    } catch (IllegalStateException e) {
      pending = true;
      pendingNextIsEven = nextIsEven;
      pendingStartAtFlip = startAtFlip;
      throw e;
    }
    return nextIsEven ? 1 : 0;
  }

  private void awaitOldPhase(boolean nextIsEven, long startAtFlip) {
    int spins = 0;
    long deadlineNs = 0;
    while ((nextIsEven ? oddEndEpoch : evenEndEpoch) != startAtFlip) {
      // a writer is at most one guest step away from leaving: spin briefly, then back off
      if (++spins < 200) {
        Thread.onSpinWait();
      } else if (spins < 400) {
        Thread.yield();
      } else {
        long now = System.nanoTime();
        if (deadlineNs == 0) {
          deadlineNs = now + waitLimitNs;
        } else if (now - deadlineNs > 0) {
          throw new IllegalStateException("a vCPU did not finish its guest step within "
              + TimeUnit.NANOSECONDS.toMillis(waitLimitNs) + " ms (a guest step that does not return)");
        }
        if (Thread.currentThread().isInterrupted()) {
          throw new IllegalStateException("interrupted while waiting for a vCPU to finish its guest step");
        }
        LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(50));
      }
    }
  }
}
