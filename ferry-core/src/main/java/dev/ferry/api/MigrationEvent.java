package dev.ferry.api;

/**
 * What a migration tells its listeners ({@link FerryMachine#addMigrationListener}): QEMU's {@code
 * MIGRATION} and {@code MIGRATION_PASS} events.
 */
public sealed interface MigrationEvent {
  /** Which side of a migration this machine is. */
  enum Direction {
    /** This machine is the source. */
    OUTGOING,
    /** This machine is the destination. */
    INCOMING
  }

  /** The side the event is about. */
  Direction direction();

  /**
   * The status changed.
   *
   * @param direction the side
   * @param from the status before
   * @param to the status now
   * @param reason why, in one line (the error for {@code failed})
   */
  record StatusChanged(Direction direction, MigrationStatus from, MigrationStatus to, String reason)
      implements MigrationEvent {}

  /**
   * A new pass over RAM began.
   *
   * @param direction always {@link Direction#OUTGOING}
   * @param pass counted from 1
   */
  record Pass(Direction direction, long pass) implements MigrationEvent {}
}
