package dev.ferry.qmp.qapi;

/** Run states of a machine as QMP names them (QAPI {@code RunState}, QEMU 7.2). */
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

  private final String wireName;

  RunState(String wireName) {
    this.wireName = wireName;
  }

  /** The QAPI name, e.g. {@code postmigrate}. */
  public String wireName() {
    return wireName;
  }

  /** Looks a state up by its QAPI name; throws IllegalArgumentException for unknown names. */
  public static RunState fromWireName(String name) {
    for (RunState s : values()) {
      if (s.wireName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown run state: " + name);
  }
}
