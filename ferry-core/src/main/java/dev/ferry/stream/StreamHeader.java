package dev.ferry.stream;

/**
 * The stream header.
 *
 * <pre>
 *  +-------------------+-------------------+
 *  | be32 0x5145564D   | be32 0x00000003   |   "QEVM", version 3
 *  +-------------------+-------------------+
 * </pre>
 */
public final class StreamHeader {
  public static final int MAGIC = 0x5145564D;
  public static final int VERSION = 3;
  /** Rejected with its own message ("v2 format obsolete"). */
  public static final int OBSOLETE_VERSION = 2;
  public static final int LENGTH = 8;
  /** Target page size of the streams Ferry writes and reads (x86: 4 KiB). */
  public static final int TARGET_PAGE_SIZE = 4096;

  private StreamHeader() {}
}
