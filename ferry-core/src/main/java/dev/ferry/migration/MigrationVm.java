package dev.ferry.migration;

/** What a migration needs of the machine it moves. */
public interface MigrationVm {
  /** True when the vCPUs run. */
  boolean running();

  /** Stops the vCPUs at a step boundary; returns once they stopped. */
  void pause() throws InterruptedException;

  /** Lets the vCPUs run on from where they stopped. */
  void resume();

  /** The source finished: the machine stays paused in QEMU's "postmigrate" state. */
  default void migrated() {}
}
