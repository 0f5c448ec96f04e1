package dev.ferry.kv;

import dev.ferry.kv.store.KvMemory;
import dev.ferry.kv.store.KvState;
import java.time.Duration;

/**
 * The machine as the service sees it: one RAM region for the keyspace, the device that holds the
 * keyspace's bookkeeping, and guest steps for the worker threads. The only seam between the service
 * and Ferry (the service wires it to a Ferry machine; tests may use another).
 */
public interface KvGuest {
  /** Bytes of the keyspace's region. */
  long regionBytes();

  /** The keyspace's bookkeeping: change it only inside a step. */
  KvState state();

  /** A handle for the calling thread, used by that thread only. */
  Worker openWorker();

  /**
   * True once the keyspace has moved away for good: a migration source after a completed
   * switch-over (its machine stays stopped). Commands on the keyspace are then refused.
   */
  boolean migratedAway();

  /** The machine's run state, QAPI-named ({@code running}, {@code inmigrate}, {@code postmigrate}, ...), for INFO. */
  String runState();

  /** One worker thread's access to guest steps and the region. */
  interface Worker extends AutoCloseable {
    /**
     * Opens a guest step once the machine runs, waiting at most {@code timeout}; false when the
     * machine stayed stopped (paused, switching over, loading, migrated away).
     */
    boolean tryEnterStep(Duration timeout) throws InterruptedException;

    void exitStep();

    /** The region: reads at any time, writes inside a step only. */
    KvMemory memory();

    @Override
    void close();
  }
}
