package dev.ferry.api;

/** The status of a migration, as QEMU's {@code query-migrate} names it. */
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

  private final String qapiName;

  MigrationStatus(String qapiName) {
    this.qapiName = qapiName;
  }

  /** The QAPI spelling, e.g. {@code postcopy-active}. */
  public String qapiName() {
    return qapiName;
  }

  /** True once the migration has ended: completed, failed or cancelled. */
  public boolean isFinal() {
    return this == COMPLETED || this == FAILED || this == CANCELLED;
  }

  static MigrationStatus of(dev.ferry.migration.MigrationStatus s) {
    return valueOf(s.name());
  }

  @Override
  public String toString() {
    return qapiName;
  }
}
