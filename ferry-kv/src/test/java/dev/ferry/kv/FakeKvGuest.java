package dev.ferry.kv;

import dev.ferry.kv.store.KvMemory;
import dev.ferry.kv.store.KvState;
import dev.ferry.kv.store.SegmentKvMemory;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/** A {@link KvGuest} without a machine: a plain segment and a run/stop gate, for server tests. */
final class FakeKvGuest implements KvGuest, AutoCloseable {
  private final Arena arena = Arena.ofShared();
  private final SegmentKvMemory memory;
  private final KvState state;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private boolean stopped;
  private int inStep;
  private volatile boolean migratedAway;

  FakeKvGuest(long bytes) {
    memory = new SegmentKvMemory(arena.allocate(bytes, 4096));
    state = new KvState(bytes);
  }

  /** Stops as a machine does: new steps wait, and this returns once no step is open. */
  void stop() throws InterruptedException {
    lock.lock();
    try {
      stopped = true;
      while (inStep > 0) {
        changed.await();
      }
    } finally {
      lock.unlock();
    }
  }

  void resume() {
    lock.lock();
    try {
      stopped = false;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** A completed switch-over: stays stopped, keyspace moved away. */
  void migrateAway() throws InterruptedException {
    stop();
    migratedAway = true;
  }

  @Override
  public long regionBytes() {
    return memory.byteSize();
  }

  @Override
  public KvState state() {
    return state;
  }

  @Override
  public boolean migratedAway() {
    return migratedAway;
  }

  @Override
  public String runState() {
    return migratedAway ? "postmigrate" : stopped ? "paused" : "running";
  }

  @Override
  public Worker openWorker() {
    return new Worker() {
      @Override
      public boolean tryEnterStep(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
          while (stopped) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
              return false;
            }
            changed.awaitNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
          }
          inStep++;
          return true;
        } finally {
          lock.unlock();
        }
      }

      @Override
      public void exitStep() {
        lock.lock();
        try {
          inStep--;
          changed.signalAll();
        } finally {
          lock.unlock();
        }
      }

      @Override
      public KvMemory memory() {
        return memory;
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public void close() {
    arena.close();
  }
}
