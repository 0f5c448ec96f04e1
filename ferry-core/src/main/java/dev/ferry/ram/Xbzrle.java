package dev.ferry.ram;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * XBZRLE page deltas: a page is sent as the bytes that changed since the copy both sides already
 * hold.
 *
 * <pre>
 *  delta = { zrun, nzrun, nzrun new bytes }*      zrun, nzrun: ULEB128, 1 or 2 bytes (0..16383)
 *   zrun   bytes unchanged (only the first pair may have 0); the trailing unchanged run is omitted
 *   nzrun  bytes changed (>= 1), followed by their new values
 * </pre>
 *
 * The decoder works in place on the receiver's copy of the page (its RAM is the old copy), and
 * checks every length against both the input and the page, so a hostile delta can neither read nor
 * write out of bounds.
 */
public final class Xbzrle {
  /** Largest value a two-byte ULEB128 can carry. */
  static final int MAX_ULEB = 0x3FFF;

  private Xbzrle() {}

  /**
   * Encodes the change from {@code oldPage} to {@code newPage} (same length, at most 16383 bytes)
   * into {@code dst}.
   *
   * @return the encoded length; 0 when the pages are equal; -1 when the delta would not fit in
   *     {@code dstCapacity} bytes (the caller then sends the page whole)
   */
  public static int encode(byte[] oldPage, byte[] newPage, byte[] dst, int dstCapacity) {
    return encode(MemorySegment.ofArray(oldPage), MemorySegment.ofArray(newPage), dst, dstCapacity);
  }

  /** As {@link #encode(byte[], byte[], byte[], int)}, for pages in (native or heap) segments. */
  public static int encode(MemorySegment oldPage, MemorySegment newPage, byte[] dst, int dstCapacity) {
    long size = newPage.byteSize();
    if (oldPage.byteSize() != size || size > MAX_ULEB) {
      throw new IllegalArgumentException("pages must have equal sizes <= " + MAX_ULEB);
    }
    if (dstCapacity < 0 || dstCapacity > dst.length) {
      throw new IllegalArgumentException("bad capacity " + dstCapacity);
    }
    int slen = (int) size;
    int i = 0;
    int d = 0;
    while (i < slen) {
      // unchanged run: skip equal bytes; mismatch() compares 8 bytes at a time
      long m = MemorySegment.mismatch(oldPage, i, slen, newPage, i, slen);
      if (m < 0) {
        break; // the rest is unchanged: the trailing zero run is not encoded
      }
      int zrun = (int) m - i;
      i += zrun;
      int start = i;
      while (i < slen && oldPage.get(ValueLayout.JAVA_BYTE, i) != newPage.get(ValueLayout.JAVA_BYTE, i)) {
        i++;
      }
      int nzrun = i - start;
      int need = ulebLength(zrun) + ulebLength(nzrun) + nzrun;
      if (d + need > dstCapacity) {
        return -1;
      }
      d = putUleb(dst, d, zrun);
      d = putUleb(dst, d, nzrun);
      MemorySegment.copy(newPage, ValueLayout.JAVA_BYTE, start, dst, d, nzrun);
      d += nzrun;
    }
    return d;
  }

  /**
   * Applies the delta {@code src[0..srcLen)} in place to {@code page}.
   *
   * @return the page position after the last changed byte, or -1 when the delta is malformed (a
   *     run past the page or the input, a zero run length where none is allowed, a ULEB128 longer
   *     than two bytes); the page may then be partly updated
   */
  public static int decode(byte[] src, int srcLen, MemorySegment page) {
    if (srcLen < 0 || srcLen > src.length) {
      throw new IllegalArgumentException("bad length " + srcLen);
    }
    long dlen = page.byteSize();
    int i = 0;
    long d = 0;
    while (i < srcLen) {
      if (srcLen - i < 2) {
        return -1;
      }
      int packed = getUleb(src, i, srcLen);
      if (packed < 0) {
        return -1;
      }
      int zrun = packed & 0xFFFF;
      if (zrun == 0 && i != 0) {
        return -1; // only the very first pair may start with a changed byte
      }
      i += packed >>> 16;
      d += zrun;
      if (d > dlen || srcLen - i < 2) {
        return -1;
      }
      packed = getUleb(src, i, srcLen);
      if (packed < 0) {
        return -1;
      }
      int nzrun = packed & 0xFFFF;
      i += packed >>> 16;
      if (nzrun == 0 || d + nzrun > dlen || nzrun > srcLen - i) {
        return -1;
      }
      MemorySegment.copy(src, i, page, ValueLayout.JAVA_BYTE, d, nzrun);
      i += nzrun;
      d += nzrun;
    }
    return (int) d;
  }

  static int ulebLength(int v) {
    return v < 0x80 ? 1 : 2;
  }

  private static int putUleb(byte[] dst, int d, int v) {
    if (v < 0x80) {
      dst[d] = (byte) v;
      return d + 1;
    }
    dst[d] = (byte) (0x80 | (v & 0x7F));
    dst[d + 1] = (byte) (v >>> 7);
    return d + 2;
  }

  /**
   * A 1- or 2-byte ULEB128 at {@code src[i]}: (bytes used << 16) | value, or -1 when a third byte
   * would be needed or the input ends.
   */
  private static int getUleb(byte[] src, int i, int srcLen) {
    int b0 = src[i] & 0xFF;
    if ((b0 & 0x80) == 0) {
      return (1 << 16) | b0;
    }
    if (i + 1 >= srcLen) {
      return -1;
    }
    int b1 = src[i + 1] & 0xFF;
    if ((b1 & 0x80) != 0) {
      return -1;
    }
    return (2 << 16) | (b0 & 0x7F) | (b1 << 7);
  }
}
