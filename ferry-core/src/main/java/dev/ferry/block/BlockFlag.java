package dev.ferry.block;

/**
 * The flags of a {@code block} section record (QEMU 7.2 migration/block.c {@code BLK_MIG_FLAG_*}):
 * the low 9 bits of each big-endian 64-bit word {@code (value << 9) | flags}.
 */
public enum BlockFlag {
  /** One chunk at sector {@code value}: device name and 1 MiB of data (none with ZERO_BLOCK). */
  DEVICE_BLOCK(0x01),
  /** End of this section's body. */
  EOS(0x02),
  /** {@code value} is the progress percent. */
  PROGRESS(0x04),
  /** With DEVICE_BLOCK: the chunk is all zeros and carries no payload (capability zero-blocks). */
  ZERO_BLOCK(0x08);

  /** Bits of a word that hold flags; the rest is the value shifted left by 9. */
  public static final int MASK = 0x1FF;

  private final int code;

  BlockFlag(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }

  /** The word of a record with {@code value} (sector number or percent) and {@code flags}. */
  public static long word(long value, int flags) {
    return (value << 9) | flags;
  }
}
