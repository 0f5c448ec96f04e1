package dev.ferry.migration;

/** What a migration needs of the machine it moves. */
public interface MigrationVm {
  /** True when the vCPUs run. */
  boolean running();

  /** Stops the vCPUs at a step boundary; returns once they stopped. */
  void pause() throws InterruptedException;

  /** Lets the vCPUs run on from where they stopped. */
  void resume();

  /**
   * Auto-converge: every vCPU sleeps {@code percent}% of its time, in 10 ms slices (0 ends it). A
   * machine without vCPU throttling ignores it.
   */
  default void throttle(int percent) {}

  /** The source finished: the machine stays paused in QEMU's "postmigrate" state. */
  default void migrated() {}
}
