package dev.ferry.qmp.qapi;

/**
 * Lifecycle states of a migration as QMP names them (QAPI {@code MigrationStatus}, QEMU 7.2). The
 * wire name is the only identity: never use {@link #ordinal()} on the wire.
 */
public enum MigrationStatus {
  NONE("none"),
  SETUP("setup"),
  CANCELLING("cancelling"),
  CANCELLED("cancelled"),
  ACTIVE("active"),
  POSTCOPY_ACTIVE("postcopy-active"),
  POSTCOPY_PAUSED("postcopy-paused"),
  POSTCOPY_RECOVER("postcopy-recover"),
  COMPLETED("completed"),
  FAILED("failed"),
  COLO("colo"),
  PRE_SWITCHOVER("pre-switchover"),
  DEVICE("device"),
  WAIT_UNPLUG("wait-unplug");

  private final String wireName;

  MigrationStatus(String wireName) {
    this.wireName = wireName;
  }

  /** The QAPI name, e.g. {@code postcopy-active}. */
  public String wireName() {
    return wireName;
  }

  /** Looks a status up by its QAPI name; throws IllegalArgumentException for unknown names. */
  public static MigrationStatus fromWireName(String name) {
    for (MigrationStatus s : values()) {
      if (s.wireName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown migration status: " + name);
  }
}
