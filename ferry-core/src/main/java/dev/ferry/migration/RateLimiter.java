package dev.ferry.migration;

import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;

/**
 * QEMU's migration rate limit: a budget of {@code maxBytesPerSec / 10} bytes per 100 ms window,
 * counted on the stream's byte position. {@link #exhausted()} is what the RAM saver polls;
 * {@link #awaitWindowEnd()} sleeps until the window ends (or an urgent wake-up, such as a postcopy
 * page request). A limit of 0 means unlimited.
 */
public final class RateLimiter {
  public static final long WINDOW_NS = 100_000_000L;

  private final LongSupplier position;
  private final LongSupplier clockNs;
  private volatile long maxBytesPerSec;
  private long windowStartNs;
  private long windowStartPos;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition wake = lock.newCondition();
  private boolean urgent;

  /**
   * @param position the stream's byte position
   * @param clockNs a monotonic clock (System::nanoTime)
   */
  public RateLimiter(LongSupplier position, LongSupplier clockNs, long maxBytesPerSec) {
    this.position = position;
    this.clockNs = clockNs;
    this.maxBytesPerSec = maxBytesPerSec;
    this.windowStartNs = clockNs.getAsLong();
    this.windowStartPos = position.getAsLong();
  }

  /** Changes the limit (takes effect in the current window); 0 = unlimited. */
  public void setMaxBytesPerSec(long v) {
    maxBytesPerSec = v;
  }

  public long maxBytesPerSec() {
    return maxBytesPerSec;
  }

  /** Bytes allowed per window. */
  public long budgetBytes() {
    long max = maxBytesPerSec;
    return max <= 0 ? Long.MAX_VALUE : Math.max(1, max / 10);
  }

  /** True when this window's budget is used up. */
  public boolean exhausted() {
    long max = maxBytesPerSec;
    if (max <= 0) {
      return false;
    }
    maybeRoll();
    return position.getAsLong() - windowStartPos > budgetBytes();
  }

  private void maybeRoll() {
    long now = clockNs.getAsLong();
    if (now - windowStartNs >= WINDOW_NS) {
      windowStartNs = now;
      windowStartPos = position.getAsLong();
    }
  }

  /** Sleeps until the current window ends, or until {@link #wakeUp()}. */
  public void awaitWindowEnd() throws InterruptedException {
    long left = WINDOW_NS - (clockNs.getAsLong() - windowStartNs);
    lock.lock();
    try {
      while (left > 0 && !urgent) {
        left = wake.awaitNanos(left);
      }
      urgent = false;
    } finally {
      lock.unlock();
    }
    maybeRoll();
  }

  /** Ends a wait early (an urgent page request). */
  public void wakeUp() {
    lock.lock();
    try {
      urgent = true;
      wake.signalAll();
    } finally {
      lock.unlock();
    }
  }
}
