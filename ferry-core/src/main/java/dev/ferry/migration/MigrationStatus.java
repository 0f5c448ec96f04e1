package dev.ferry.migration;

import java.util.EnumSet;
import java.util.Set;

/**
 * The status of a migration, with QAPI's names (qapi/migration.json MigrationStatus) and the moves
 * allowed between them. {@link MigrationState#transition} is the only place that changes it.
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

  private final String qapiName;

  MigrationStatus(String qapiName) {
    this.qapiName = qapiName;
  }

  /** The QAPI spelling ("postcopy-active"). */
  public String qapiName() {
    return qapiName;
  }

  public static MigrationStatus fromQapiName(String name) {
    for (MigrationStatus s : values()) {
      if (s.qapiName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown migration status '" + name + "'");
  }

  /** True once the migration has ended (completed, failed or cancelled). */
  public boolean isFinal() {
    return this == COMPLETED || this == FAILED || this == CANCELLED;
  }

  /** True while a migration is under way (a new one may not start). */
  public boolean isActive() {
    return !isFinal() && this != NONE;
  }

  /** The statuses this one may move to. */
  public Set<MigrationStatus> next() {
    return switch (this) {
      case NONE, COMPLETED, FAILED, CANCELLED -> EnumSet.of(SETUP);
      case SETUP -> EnumSet.of(ACTIVE, FAILED, CANCELLING);
      case ACTIVE ->
          EnumSet.of(PRE_SWITCHOVER, DEVICE, POSTCOPY_ACTIVE, COMPLETED, FAILED, CANCELLING);
      case PRE_SWITCHOVER -> EnumSet.of(DEVICE, POSTCOPY_ACTIVE, FAILED, CANCELLING);
      case DEVICE -> EnumSet.of(COMPLETED, POSTCOPY_ACTIVE, FAILED, CANCELLING);
      case POSTCOPY_ACTIVE -> EnumSet.of(COMPLETED, POSTCOPY_PAUSED, FAILED);
      case POSTCOPY_PAUSED -> EnumSet.of(POSTCOPY_RECOVER, FAILED);
      case POSTCOPY_RECOVER -> EnumSet.of(POSTCOPY_ACTIVE, POSTCOPY_PAUSED, FAILED);
      case CANCELLING -> EnumSet.of(CANCELLED, FAILED);
      case COLO, WAIT_UNPLUG -> EnumSet.of(ACTIVE, FAILED, CANCELLING);
    };
  }
}
