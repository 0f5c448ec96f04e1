package dev.ferry.qmp.qapi;

/**
 * Migration capabilities as QMP names them (QAPI {@code MigrationCapability}, QEMU 7.2), in QAPI
 * order, which is also the order {@code query-migrate-capabilities} lists them. Which ones the engine
 * honours is the backend's business: it rejects the others in {@code migrate-set-capabilities}.
 */
public enum MigrationCapability {
  XBZRLE("xbzrle"),
  RDMA_PIN_ALL("rdma-pin-all"),
  AUTO_CONVERGE("auto-converge"),
  ZERO_BLOCKS("zero-blocks"),
  COMPRESS("compress"),
  EVENTS("events"),
  POSTCOPY_RAM("postcopy-ram"),
  X_COLO("x-colo"),
  RELEASE_RAM("release-ram"),
  BLOCK("block"),
  RETURN_PATH("return-path"),
  PAUSE_BEFORE_SWITCHOVER("pause-before-switchover"),
  MULTIFD("multifd"),
  DIRTY_BITMAPS("dirty-bitmaps"),
  POSTCOPY_BLOCKTIME("postcopy-blocktime"),
  LATE_BLOCK_ACTIVATE("late-block-activate"),
  X_IGNORE_SHARED("x-ignore-shared"),
  VALIDATE_UUID("validate-uuid"),
  BACKGROUND_SNAPSHOT("background-snapshot"),
  ZERO_COPY_SEND("zero-copy-send"),
  POSTCOPY_PREEMPT("postcopy-preempt");

  private final String wireName;

  MigrationCapability(String wireName) {
    this.wireName = wireName;
  }

  /** The QAPI name, e.g. {@code postcopy-ram}. */
  public String wireName() {
    return wireName;
  }

  /** Looks a capability up by its QAPI name, or returns null when there is none of that name. */
  public static MigrationCapability byWireName(String name) {
    for (MigrationCapability c : values()) {
      if (c.wireName.equals(name)) {
        return c;
      }
    }
    return null;
  }
}
