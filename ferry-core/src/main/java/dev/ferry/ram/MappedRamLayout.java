package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The {@code mapped-ram} file layout (QEMU 9.0's, {@code docs/devel/migration/mapped-ram.rst}):
 * with the capability on, a {@code file:} migration gives every page of every RAM block a fixed
 * place in the file, so a page sent again in a later pass overwrites its earlier copy and the file
 * never holds more than RAM plus bitmaps plus device state, however busy the guest.
 *
 * <p>The stream is the normal one (header, configuration listing {@code mapped-ram}, sections,
 * vmdesc); only the {@code ram} section changes. Its setup chunk's MEM_SIZE record carries, after
 * each block's entry, a 28-byte header, then the stream jumps over the block's bitmap and pages:
 *
 * <pre>
 *  offset (file)                       bytes
 *  ...  be64 total | MEM_SIZE (0x04)   8
 *  per RAM block, in block-list order:
 *   E   u8 n, name[n], be64 length     1 + n + 8     (plus be64 page size when QEMU's rules want it)
 *   H   be32 version = 1               4    \
 *   H+4 be64 page_size = 0x1000        8     | MappedRamHeader, packed, big-endian
 *   H+12 be64 bitmap_offset = H + 28   8     |
 *   H+20 be64 pages_offset             8    /   = round_up(bitmap_offset + bitmap bytes, 1 MiB)
 *   H+28 bitmap                        ceil(pages / 64) * 8: 64-bit words, little-endian (x86-64
 *                                      QEMU writes its host's unsigned longs); bit i of word w is
 *                                      page 64 * w + i; written once, at completion
 *        zeros up to pages_offset      (a hole: never written)
 *   P   page 0 .. page (length/4K - 1) length bytes: page i at P + i * 4096, written where its
 *                                      bit is set (positional writes, in any order, any number of
 *                                      times); the rest is a hole or a stale copy
 *   P + length: the next block's entry, or be64 EOS (0x10) after the last block
 *  then the stream goes on sequentially: iterations (START/PART sections whose RAM body is just
 *  EOS, no page records), device state, EOF, vmdesc.
 * </pre>
 *
 * <p>A page whose bit is clear is zero on the destination: zero pages are never written (QEMU
 * 9.0's save_zero_page clears the bit, so a page sent non-zero in one pass and found zero in a later
 * one is zero after the load, whatever stale bytes its slot still holds). QEMU's loader reads the
 * set pages straight into guest RAM, trusting fresh RAM to be zero elsewhere; Ferry's does the same
 * and zeroes a clear page only when the destination's RAM may hold data.
 *
 * <p>Bound: file size &le; (stream before RAM) + &Sigma;<sub>blocks</sub>(entry + 28 + bitmap + 1 MiB
 * alignment + length) + (the rest of the stream: a few bytes per iteration, device state, vmdesc).
 */
public final class MappedRamLayout {
  /** {@code MAPPED_RAM_HDR_VERSION}. */
  public static final int VERSION = 1;
  /** {@code sizeof(MappedRamHeader)}: be32 + 3 × be64, packed. */
  public static final int HEADER_LENGTH = 28;
  /** Where a block's pages start: the next multiple of this after its bitmap (QEMU: 1 MiB). */
  public static final long FILE_OFFSET_ALIGNMENT = 1L << 20;
  /** Most bytes one positional read or write moves (QEMU's load buffer: 1 MiB). */
  static final int MAX_IO_BYTES = 1 << 20;

  private MappedRamLayout() {}

  /** One block's header. */
  public record Header(int version, long pageSize, long bitmapOffset, long pagesOffset) {
    /** The 28 bytes as in the file. */
    public byte[] encode() {
      ByteBuffer b = ByteBuffer.allocate(HEADER_LENGTH).order(ByteOrder.BIG_ENDIAN);
      b.putInt(version).putLong(pageSize).putLong(bitmapOffset).putLong(pagesOffset);
      return b.array();
    }

    /** Reads the 28 bytes (no checks: see {@link MappedRamReader}). */
    public static Header decode(byte[] b) {
      ByteBuffer in = ByteBuffer.wrap(b).order(ByteOrder.BIG_ENDIAN);
      return new Header(in.getInt(), in.getLong(), in.getLong(), in.getLong());
    }
  }

  /**
   * What a loader found for one block (for {@code ferry analyze}): its header at {@code
   * headerOffset} and how many of its pages the bitmap marks present.
   */
  public record BlockInfo(String block, long length, long headerOffset, Header header, long pagesPresent) {}

  /** Pages of a block of {@code lengthBytes}. */
  public static long pageCount(long lengthBytes) {
    return lengthBytes / StreamHeader.TARGET_PAGE_SIZE;
  }

  /** Bitmap bytes of a block of {@code lengthBytes}: whole 64-bit words. */
  public static long bitmapBytes(long lengthBytes) {
    return (pageCount(lengthBytes) + 63) / 64 * 8;
  }

  /** The header the source writes for a block of {@code lengthBytes} whose header starts at {@code headerOffset}. */
  public static Header headerAt(long headerOffset, long lengthBytes) {
    long bitmap = headerOffset + HEADER_LENGTH;
    long pages = roundUp(bitmap + bitmapBytes(lengthBytes), FILE_OFFSET_ALIGNMENT);
    return new Header(VERSION, StreamHeader.TARGET_PAGE_SIZE, bitmap, pages);
  }

  static long roundUp(long v, long align) {
    return (v + align - 1) / align * align;
  }
}
