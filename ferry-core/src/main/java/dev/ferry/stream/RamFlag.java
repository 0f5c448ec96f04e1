package dev.ferry.stream;

/**
 * Flags in the low bits of a RAM record word (RAM_SAVE_FLAG_*). A record starts with
 * {@code be64 (offset within block, page aligned) | flags}; the flags occupy the bits below the
 * target page size.
 *
 * <pre>
 *  ZERO/PAGE/XBZRLE/COMPRESS_PAGE record:
 *  +---------------------+--------------------------+---------------------------------+
 *  | be64 offset | flags | [u8 n, name] w/o CONTINUE| payload (fill byte / page / ...) |
 *  +---------------------+--------------------------+---------------------------------+
 * </pre>
 */
public enum RamFlag {
  /** Obsolete; rejected. */
  FULL(0x001),
  /** Page filled with one byte (always 0). */
  ZERO(0x002),
  /** Block list follows; the offset part is the total byte count. */
  MEM_SIZE(0x004),
  PAGE(0x008),
  /** End of this chunk. */
  EOS(0x010),
  /** Same block as the previous page record: the name is omitted. */
  CONTINUE(0x020),
  XBZRLE(0x040),
  /** RDMA only; rejected. */
  HOOK(0x080),
  /** zlib page (compress capability). */
  COMPRESS_PAGE(0x100),
  /** QEMU 8.0+ only; rejected by 7.2. */
  MULTIFD_FLUSH(0x200);

  private final int code;

  RamFlag(int code) {
    this.code = code;
  }

  /** The flag's bit. */
  public int code() {
    return code;
  }

  public boolean isSet(long word) {
    return (word & code) != 0;
  }

  /** The single flag with this bit value; throws on anything else. */
  public static RamFlag fromCode(int code) {
    for (RamFlag f : values()) {
      if (f.code == code) {
        return f;
      }
    }
    throw new IllegalArgumentException(String.format("unknown RAM flag 0x%x", code));
  }

  /** Names of the flags set in {@code flags} ("ZERO|CONTINUE"), plus any unknown bits in hex. */
  public static String describe(long flags) {
    StringBuilder sb = new StringBuilder();
    long rest = flags;
    for (RamFlag f : values()) {
      if ((flags & f.code) != 0) {
        if (!sb.isEmpty()) {
          sb.append('|');
        }
        sb.append(f.name());
        rest &= ~f.code;
      }
    }
    if (rest != 0) {
      if (!sb.isEmpty()) {
        sb.append('|');
      }
      sb.append(String.format("0x%x", rest));
    }
    return sb.isEmpty() ? "0" : sb.toString();
  }
}
