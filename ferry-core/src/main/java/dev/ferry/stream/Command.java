package dev.ferry.stream;

/**
 * In-band commands (QEMU_VM_COMMAND, type byte 0x08), QEMU 7.2 numbering.
 *
 * <pre>
 *  +----+----------+----------+------------------+
 *  | 08 | cmd be16 | len be16 | len payload bytes |   PACKAGED: payload = be32 L, then L bytes
 *  +----+----------+----------+------------------+             follow outside len
 * </pre>
 *
 * {@link #fixedLength()} is the only length a command may carry, or {@link #VARIABLE}.
 */
public enum Command implements WireCode {
  OPEN_RETURN_PATH(1, 0),
  PING(2, 4),
  /** 16 bytes (be64 host page size summary, be64 target page size), or 0 for dirty-bitmaps only. */
  POSTCOPY_ADVISE(3, -1),
  POSTCOPY_LISTEN(4, 0),
  POSTCOPY_RUN(5, 0),
  /** u8 version 0, u8 n + name, u8 0, k x (be64 start, be64 length). */
  POSTCOPY_RAM_DISCARD(6, -1),
  PACKAGED(7, 4),
  ENABLE_COLO(8, 0),
  POSTCOPY_RESUME(9, 0),
  /** u8 n + RAM block name. */
  RECV_BITMAP(10, -1);

  /** First number QEMU 7.2 rejects (QEMU_VM_COMMAND MAX). */
  public static final int MAX = 11;
  /** Largest PACKAGED blob Ferry accepts or produces. QEMU allows 4 GiB; device state is far below. */
  public static final long MAX_PACKAGED_LENGTH = 256L << 20;

  private static final WireCode.Table<Command> TABLE = new WireCode.Table<>(Command.class, MAX, "command");

  private final int code;
  private final int fixedLength;

  Command(int code, int fixedLength) {
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

  /** The command for a wire number, or null when 7.2 knows none (0 and >= 11 included). */
  public static Command fromCodeOrNull(int code) {
    return TABLE.fromCodeOrNull(code);
  }

  /** The command for a wire number; IllegalArgumentException "unknown command N" otherwise. */
  public static Command fromCode(int code) {
    return TABLE.fromCode(code);
  }
}
