package dev.ferry.stream;

/**
 * The type byte in front of every top-level record of a QEMU 7.2 stream (QEMU_VM_*).
 *
 * <pre>
 *  full header (START, FULL)            short header (PART, END)     footer
 *  +----+----------+---+-------+----------+---------+   +----+----------+   +----+----------+
 *  | 01 | sect id  |len| idstr | instance | version |   | 02 | sect id  |   | 7E | sect id  |
 *  | 04 |  be32    |u8 | bytes |   be32   |  be32   |   | 03 |  be32    |   |    |  be32    |
 *  +----+----------+---+-------+----------+---------+   +----+----------+   +----+----------+
 * </pre>
 */
public enum SectionType {
  EOF(0x00),
  START(0x01),
  PART(0x02),
  END(0x03),
  FULL(0x04),
  /** Only inside a VMState body. */
  SUBSECTION(0x05),
  /** Only after EOF: be32 length + JSON. */
  VMDESCRIPTION(0x06),
  /** Only right after the header. */
  CONFIGURATION(0x07),
  COMMAND(0x08),
  FOOTER(0x7E);

  private static final SectionType[] BY_CODE = new SectionType[256];

  static {
    for (SectionType t : values()) {
      BY_CODE[t.code] = t;
    }
  }

  private final int code;

  SectionType(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }

  /** The type for a wire byte, or null when the byte names no type. */
  public static SectionType fromCodeOrNull(int code) {
    return code >= 0 && code < 256 ? BY_CODE[code] : null;
  }

  /** The type for a wire byte; throws {@link IllegalArgumentException} on an unknown one. */
  public static SectionType fromCode(int code) {
    SectionType t = fromCodeOrNull(code);
    if (t == null) {
      throw new IllegalArgumentException(String.format("unknown section type 0x%02x", code));
    }
    return t;
  }
}
