package dev.ferry.machine;

/**
 * A machine's run state, named as QAPI's {@code RunState} (what {@code query-status} reports and
 * what QEMU's global-state section carries as a string). Only {@link #RUNNING} runs vCPUs.
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

  public boolean isRunning() {
    return this == RUNNING;
  }

  /**
   * States the machine cannot run from until its whole state is replaced (QEMU's {@code
   * runstate_needs_reset}): {@code internal-error} (a vCPU failed, or a load failed half-way),
   * {@code shutdown}, {@code guest-panicked}. A successful load of a whole snapshot is Ferry's reset.
   */
  public boolean needsReset() {
    return this == INTERNAL_ERROR || this == SHUTDOWN || this == GUEST_PANICKED;
  }

  /** QEMU's refusal of {@code cont} in a {@link #needsReset()} state. */
  public static final String RESET_REQUIRED = "Resetting the Virtual Machine is required";

  /** The state with this QAPI name; throws IllegalArgumentException for an unknown one. */
  public static RunState fromQapiName(String name) {
    for (RunState s : values()) {
      if (s.qapiName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown run state '" + name + "'");
  }

  @Override
  public String toString() {
    return qapiName;
  }
}
