package dev.ferry.migration;

/**
 * Migration capabilities with QAPI's names (qapi/migration.json MigrationCapability, QEMU 7.2, plus
 * QEMU 9.0's {@code mapped-ram}).
 * {@link #supported()} says whether Ferry implements it; setting an unsupported one on is an error.
 */
public enum MigrationCapability {
  XBZRLE("xbzrle", true),
  RDMA_PIN_ALL("rdma-pin-all", false),
  AUTO_CONVERGE("auto-converge", true),
  ZERO_BLOCKS("zero-blocks", true),
  COMPRESS("compress", false),
  EVENTS("events", true),
  POSTCOPY_RAM("postcopy-ram", true),
  X_COLO("x-colo", false),
  RELEASE_RAM("release-ram", false),
  BLOCK("block", true),
  RETURN_PATH("return-path", true),
  PAUSE_BEFORE_SWITCHOVER("pause-before-switchover", true),
  MULTIFD("multifd", false),
  DIRTY_BITMAPS("dirty-bitmaps", false),
  POSTCOPY_BLOCKTIME("postcopy-blocktime", true),
  LATE_BLOCK_ACTIVATE("late-block-activate", false),
  X_IGNORE_SHARED("x-ignore-shared", false),
  VALIDATE_UUID("validate-uuid", false),
  BACKGROUND_SNAPSHOT("background-snapshot", false),
  ZERO_COPY_SEND("zero-copy-send", false),
  POSTCOPY_PREEMPT("postcopy-preempt", false),
  /**
   * QEMU 9.0: a {@code file:} migration puts every page at a fixed offset of the file ({@link
   * dev.ferry.ram.MappedRamLayout}), so the file stays bounded; both sides need it, and it is listed
   * in the configuration section (a validated capability).
   */
  MAPPED_RAM("mapped-ram", true),
  /**
   * Ferry: with {@code postcopy-ram}, switch to postcopy on its own once precopy is not converging
   * or used its budget (see {@link SwitchOverPolicy}). Off by default, as QEMU has no such thing;
   * {@code ferry migrate --postcopy} and {@code ferry demo --postcopy} turn it on.
   */
  FERRY_AUTO_POSTCOPY("ferry-auto-postcopy", true);

  private final String qapiName;
  private final boolean supported;

  MigrationCapability(String qapiName, boolean supported) {
    this.qapiName = qapiName;
    this.supported = supported;
  }

  public String qapiName() {
    return qapiName;
  }

  public boolean supported() {
    return supported;
  }

  /** The capability with this QAPI name; a one-line error naming it otherwise. */
  public static MigrationCapability fromQapiName(String name) {
    for (MigrationCapability c : values()) {
      if (c.qapiName.equals(name)) {
        return c;
      }
    }
    throw new IllegalArgumentException("unknown migration capability '" + name + "'");
  }
}
