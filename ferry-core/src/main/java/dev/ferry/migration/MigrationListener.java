package dev.ferry.migration;

/** Observes a migration: the monitor turns these into MIGRATION and MIGRATION_PASS events. */
public interface MigrationListener {
  /** Called once per status change, after it took effect. */
  default void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {}

  /** A new pass over RAM began (QEMU's MIGRATION_PASS, counted from 1). */
  default void pass(long pass) {}
}
