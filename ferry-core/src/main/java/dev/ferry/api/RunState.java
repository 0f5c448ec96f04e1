package dev.ferry.api;

/**
 * A machine's run state, as QEMU's {@code query-status} names it. Only {@link #RUNNING} runs guest
 * code; every other state is a consistent, stopped machine (or one being loaded).
 */
public enum RunState {
  DEBUG("debug"),
  INMIGRATE("inmigrate"),
  INTERNAL_ERROR("internal-error"),
  IO_ERROR("io-error"),
  PAUSED("paused"),
  POSTMIGRATE("postmigrate"),
  PRELAUNCH("prelaunch"),
  FINISH_MIGRATE("finish-migrate"),
  RESTORE_VM("restore-vm"),
  RUNNING("running"),
  SAVE_VM("save-vm"),
  SHUTDOWN("shutdown"),
  SUSPENDED("suspended"),
  WATCHDOG("watchdog"),
  GUEST_PANICKED("guest-panicked"),
  COLO("colo");

  private final String qapiName;

  RunState(String qapiName) {
    this.qapiName = qapiName;
  }

  /** The QAPI spelling, e.g. {@code finish-migrate}. */
  public String qapiName() {
    return qapiName;
  }

  /** True only for {@link #RUNNING}. */
  public boolean isRunning() {
    return this == RUNNING;
  }

  static RunState of(dev.ferry.machine.RunState s) {
    return valueOf(s.name());
  }

  @Override
  public String toString() {
    return qapiName;
  }
}
