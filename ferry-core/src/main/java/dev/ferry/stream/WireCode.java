package dev.ferry.stream;

/**
 * A kind of framed message on the wire: an explicit numeric code (never the ordinal) and the one
 * payload length it may carry, or {@link #VARIABLE}. The in-band {@link Command}s and the {@link
 * ReturnPathMessage}s share this shape and look their codes up through a {@link Table}.
 */
public interface WireCode {
  /** {@link #fixedLength()} of a kind whose payload length varies. */
  int VARIABLE = -1;

  /** The number on the wire. */
  int code();

  /** The only payload length allowed, or {@link #VARIABLE}. */
  int fixedLength();

  /**
   * The kinds of one enum by code: codes 1 to {@code max - 1}, as QEMU numbers them; anything else,
   * 0 included, is unknown.
   *
   * @param <E> the enum
   */
  final class Table<E extends Enum<E> & WireCode> {
    private final E[] byCode;
    private final String what;

    /**
     * @param type the enum
     * @param max the first code the peer rejects
     * @param what what an unknown code is called in the error ("command", "return-path message type")
     */
    @SuppressWarnings("unchecked")
    public Table(Class<E> type, int max, String what) {
      this.byCode = (E[]) java.lang.reflect.Array.newInstance(type, max);
      this.what = what;
      for (E e : type.getEnumConstants()) {
        if (e.code() <= 0 || e.code() >= max || byCode[e.code()] != null) {
          throw new IllegalStateException(type.getSimpleName() + "." + e + ": code " + e.code() + " outside 1.." + (max - 1) + " or taken");
        }
        byCode[e.code()] = e;
      }
    }

    /** The kind with this code, or null when there is none. */
    public E fromCodeOrNull(int code) {
      return code > 0 && code < byCode.length ? byCode[code] : null;
    }

    /**
     * The kind with this code.
     *
     * @throws IllegalArgumentException "unknown WHAT CODE"
     */
    public E fromCode(int code) {
      E e = fromCodeOrNull(code);
      if (e == null) {
        throw new IllegalArgumentException("unknown " + what + " " + code);
      }
      return e;
    }
  }
}
