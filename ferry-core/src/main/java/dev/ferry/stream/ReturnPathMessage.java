package dev.ferry.stream;

/**
 * Messages from destination to source on the return path (QEMU 7.2 MIG_RP_MSG_*).
 *
 * <pre>
 *  +-----------+----------+-------------------+
 *  | type be16 | len be16 | len payload bytes |   len <= 512; RECV_BITMAP is followed by an
 *  +-----------+----------+-------------------+   unframed blob (be64 n, n bytes, be64 marker)
 * </pre>
 */
public enum ReturnPathMessage implements WireCode {
  /** be32 status: 0 = ok, 1 = the destination failed. */
  SHUT(1, 4),
  /** be32 value echoed from PING. */
  PONG(2, 4),
  /** be64 start, be32 length, u8 n + block name. */
  REQ_PAGES_ID(3, -1),
  /** be64 start, be32 length (same block as the last request). */
  REQ_PAGES(4, 12),
  /** u8 n + block name, then the bitmap blob. */
  RECV_BITMAP(5, -1),
  /** be32 value, must be 1. */
  RESUME_ACK(6, 4);

  /** First type 7.2 rejects. */
  public static final int MAX = 7;
  public static final int MAX_LENGTH = 512;
  /** End marker after a RECV_BITMAP blob. */
  public static final long RECV_BITMAP_ENDING = 0x0123456789ABCDEFL;

  private static final WireCode.Table<ReturnPathMessage> TABLE =
      new WireCode.Table<>(ReturnPathMessage.class, MAX, "return-path message type");

  private final int code;
  private final int fixedLength;

  ReturnPathMessage(int code, int fixedLength) {
    this.code = code;
    this.fixedLength = fixedLength;
  }

  @Override
  public int code() {
    return code;
  }

  @Override
  public int fixedLength() {
    return fixedLength;
  }

  /** The message type for a wire number, or null when 7.2 knows none. */
  public static ReturnPathMessage fromCodeOrNull(int code) {
    return TABLE.fromCodeOrNull(code);
  }

  /** The type for a wire number; IllegalArgumentException "unknown return-path message type N" otherwise. */
  public static ReturnPathMessage fromCode(int code) {
    return TABLE.fromCode(code);
  }
}
