package dev.ferry.stream;

/**
 * The {@code multifd-compression} methods of QEMU 7.2 with their QMP names and the bits they set in
 * a multifd packet's flags ({@code MULTIFD_FLAG_COMPRESSION_MASK} = 0xe).
 */
public enum MultifdCompression {
  NONE("none", 0x0),
  ZLIB("zlib", 0x2),
  ZSTD("zstd", 0x4);

  /** The flag bits that name the method. */
  public static final int MASK = 0xe;

  private final String qmpName;
  private final int flag;

  MultifdCompression(String qmpName, int flag) {
    this.qmpName = qmpName;
    this.flag = flag;
  }

  /** The QMP/HMP value: {@code none}, {@code zlib} or {@code zstd}. */
  public String qmpName() {
    return qmpName;
  }

  /** The bits this method sets in a packet that carries pages. */
  public int flag() {
    return flag;
  }

  /** The method whose bits are {@code flags & MASK}; throws on an unknown value. */
  public static MultifdCompression fromFlags(int flags) {
    int bits = flags & MASK;
    for (MultifdCompression c : values()) {
      if (c.flag == bits) {
        return c;
      }
    }
    throw new IllegalArgumentException(String.format("unknown multifd compression flags 0x%x", bits));
  }

  /** The method with this QMP name; throws with QEMU's text on anything else. */
  public static MultifdCompression fromQmpName(String name) {
    for (MultifdCompression c : values()) {
      if (c.qmpName.equals(name)) {
        return c;
      }
    }
    throw new IllegalArgumentException("Parameter 'multifd-compression' does not accept value '" + name + "'");
  }
}
