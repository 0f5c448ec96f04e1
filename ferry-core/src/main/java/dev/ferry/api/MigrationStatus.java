package dev.ferry.api;

/** The status of a migration, as QEMU's {@code query-migrate} names it. */
public enum MigrationStatus {
  NONE,
  SETUP,
  CANCELLING,
  CANCELLED,
  ACTIVE,
  POSTCOPY_ACTIVE,
  POSTCOPY_PAUSED,
  POSTCOPY_RECOVER,
  COMPLETED,
  FAILED,
  COLO,
  PRE_SWITCHOVER,
  DEVICE,
  WAIT_UNPLUG;

  /** The QAPI spelling, e.g. {@code postcopy-active}. */
  public String qapiName() {
    return internal().qapiName();
  }

  /** True once the migration has ended: completed, failed or cancelled. */
  public boolean isFinal() {
    return internal().isFinal();
  }

  static MigrationStatus of(dev.ferry.migration.MigrationStatus s) {
    return valueOf(s.name());
  }

  /** The engine's own constant of this name (the spelling is kept there). */
  private dev.ferry.migration.MigrationStatus internal() {
    return dev.ferry.migration.MigrationStatus.valueOf(name());
  }

  @Override
  public String toString() {
    return qapiName();
  }
}
