package dev.ferry.block;

/**
 * Layout of QEMU 7.2's {@code block} live section (version 1), one body per START, PART and END
 * section, each ending with EOS:
 *
 * <pre>
 *  0                   1                   2                   3
 * +-------------------------------------------------------+-------+
 * |  be64: value (sector number, or percent) << 9  |  flags (9 bits) |
 * +-------------------------------------------------------+-------+
 *   DEVICE_BLOCK:  u8 n | n bytes device name (no NUL) | 1 MiB data
 *   DEVICE_BLOCK|ZERO_BLOCK:  u8 n | n bytes device name   (no data)
 *   PROGRESS:      nothing more (value = percent 0..100)
 *   EOS:           nothing more; the body ends
 * </pre>
 *
 * A chunk covers {@link #CHUNK_BYTES} from byte offset {@code value * 512}; the last chunk of a disk
 * whose size is not a multiple of 1 MiB still carries a whole 1 MiB (QEMU's loader reads exactly
 * that), padded with zeros by Ferry's source; Ferry's destination writes only up to the disk's end.
 */
public final class BlockDescriptor {
  /** idstr of the live section. */
  public static final String IDSTR = "block";
  /** Section version (QEMU 7.2: 1). */
  public static final int VERSION = 1;
  /** Bytes per chunk and dirty bit (QEMU's BLK_MIG_BLOCK_SIZE, BDRV_SECTORS_PER_DIRTY_CHUNK). */
  public static final int CHUNK_BYTES = 1 << 20;
  /** Bytes per sector in the record word. */
  public static final int SECTOR_BYTES = 512;
  /** Longest device name the u8 length can carry. */
  public static final int MAX_NAME_BYTES = 255;

  private BlockDescriptor() {}
}
