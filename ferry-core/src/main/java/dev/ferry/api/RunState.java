package dev.ferry.api;

/**
 * A machine's run state, as QEMU's {@code query-status} names it. Only {@link #RUNNING} runs guest
 * code; every other state is a consistent, stopped machine (or one being loaded).
 */
public enum RunState {
  DEBUG,
  INMIGRATE,
  INTERNAL_ERROR,
  IO_ERROR,
  PAUSED,
  POSTMIGRATE,
  PRELAUNCH,
  FINISH_MIGRATE,
  RESTORE_VM,
  RUNNING,
  SAVE_VM,
  SHUTDOWN,
  SUSPENDED,
  WATCHDOG,
  GUEST_PANICKED,
  COLO;

  /** The QAPI spelling, e.g. {@code finish-migrate}. */
  public String qapiName() {
    return internal().qapiName();
  }

  /** True only for {@link #RUNNING}. */
  public boolean isRunning() {
    return this == RUNNING;
  }

  static RunState of(dev.ferry.machine.RunState s) {
    return valueOf(s.name());
  }

  /** The engine's own constant of this name (the spelling is kept there). */
  private dev.ferry.machine.RunState internal() {
    return dev.ferry.machine.RunState.valueOf(name());
  }

  @Override
  public String toString() {
    return qapiName();
  }
}
