package dev.ferry.ram;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.function.LongPredicate;

/**
 * The destination side of {@code mapped-ram} (layout: {@link MappedRamLayout}): after a block's
 * block-list entry, reads its header and bitmap and reads the pages present straight into the
 * block with positional reads, then moves the stream past the page region (QEMU's
 * parse_ramblock_mapped_ram). Stricter than QEMU: the header's offsets must describe the layout
 * (bitmap after the header, pages after the bitmap, 4 KiB aligned), no bit may be set past the
 * block's end, and every page present must lie inside the file; each failure is one line naming
 * the block and the offsets.
 */
final class MappedRamReader {
  private static final int TPS = StreamHeader.TARGET_PAGE_SIZE;

  private MappedRamReader() {}

  /**
   * Reads block {@code b}'s mapped-ram part; the stream stands right after its block-list entry.
   *
   * @param storePages read the present pages into the block (false: a decoder that checks the
   *     layout only, {@code ferry analyze} without {@code --extract})
   * @param zeroClear called for each page whose bit is clear: true when the page must be zeroed
   *     (the destination's RAM may hold data there); null when none need it
   */
  static MappedRamLayout.BlockInfo load(MigrationInput in, RamBlock b, long length, boolean storePages,
      LongPredicate zeroClear) throws IOException {
    if (!in.seekable()) {
      throw fail(in, "Migration requires seekable transport (e.g. file): the mapped-ram capability is on", in.position());
    }
    long at = in.position();
    long fileAt = in.fileOffset(); // the header's offsets are file offsets, as QEMU writes them
    String where = "mapped-ram header of RAM block '" + b.name() + "' at 0x" + Long.toHexString(fileAt);
    MappedRamLayout.Header h = MappedRamLayout.Header.decode(in.readBytes(MappedRamLayout.HEADER_LENGTH));
    if (h.version() != MappedRamLayout.VERSION) {
      // QEMU's text, plus where
      throw fail(in, "Migration mapped-ram capability version not supported (expected <= " + MappedRamLayout.VERSION
          + ", got " + h.version() + ") in the " + where, at);
    }
    if (h.pageSize() != TPS) {
      throw fail(in, String.format("%s: page size 0x%x, expected 0x%x", where, h.pageSize(), TPS), at);
    }
    long bitmapBytes = MappedRamLayout.bitmapBytes(length);
    long headerEnd = fileAt + MappedRamLayout.HEADER_LENGTH;
    if (h.bitmapOffset() < headerEnd || h.bitmapOffset() > Long.MAX_VALUE - bitmapBytes
        || h.pagesOffset() < h.bitmapOffset() + bitmapBytes) {
      throw fail(in, String.format("%s: bitmap offset 0x%x (0x%x bytes) and pages offset 0x%x do not follow the header (ends at 0x%x)",
          where, h.bitmapOffset(), bitmapBytes, h.pagesOffset(), headerEnd), at);
    }
    if (h.pagesOffset() % TPS != 0) {
      throw fail(in, "Error reading ramblock " + b.name() + " pages, region has bad alignment (pages offset 0x"
          + Long.toHexString(h.pagesOffset()) + ")", at);
    }
    long fileSize = in.fileSize();
    if (h.bitmapOffset() + bitmapBytes > fileSize) {
      throw fail(in, String.format("%s: bitmap [0x%x, +0x%x) is past the end of the file (0x%x bytes)",
          where, h.bitmapOffset(), bitmapBytes, fileSize), at);
    }
    if (bitmapBytes > Integer.MAX_VALUE - 8) {
      throw fail(in, where + ": block too large", at);
    }
    byte[] raw = new byte[(int) bitmapBytes];
    in.readAt(MemorySegment.ofArray(raw), h.bitmapOffset());
    long[] words = new long[(int) (bitmapBytes / 8)];
    java.nio.ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(words);
    long pages = MappedRamLayout.pageCount(length);
    if (pages % 64 != 0 && (words[words.length - 1] >>> (pages % 64)) != 0) {
      throw fail(in, String.format("mapped-ram bitmap of RAM block '%s' (at 0x%x) marks pages past the block's end (%d pages)",
          b.name(), h.bitmapOffset(), pages), at);
    }
    long last = lastSet(words);
    if (last >= 0 && h.pagesOffset() + (last + 1) * TPS > fileSize) {
      throw fail(in, String.format(
          "page 0x%x of RAM block '%s' is present in the mapped-ram bitmap, but its file offset 0x%x is past the end of the file (0x%x bytes)",
          last * TPS, b.name(), h.pagesOffset() + last * TPS, fileSize), at);
    }
    long present = 0;
    long p = 0;
    while (p < pages) {
      boolean set = bit(words, p);
      long e = p + 1;
      while (e < pages && bit(words, e) == set && (!set || (e - p) * TPS < MappedRamLayout.MAX_IO_BYTES)) {
        e++;
      }
      if (set) {
        if (storePages) {
          in.readAt(b.memory().asSlice(p * TPS, (e - p) * TPS), h.pagesOffset() + p * TPS);
        }
        present += e - p;
      } else if (zeroClear != null) {
        for (long q = p; q < e; q++) {
          if (zeroClear.test(q)) {
            b.targetPage(q * TPS).fill((byte) 0);
          }
        }
      }
      p = e;
    }
    in.seek(h.pagesOffset() + length);
    return new MappedRamLayout.BlockInfo(b.name(), length, fileAt, h, present);
  }

  static boolean bit(long[] words, long page) {
    return (words[(int) (page >>> 6)] & (1L << page)) != 0;
  }

  private static long lastSet(long[] words) {
    for (int w = words.length - 1; w >= 0; w--) {
      if (words[w] != 0) {
        return w * 64L + 63 - Long.numberOfLeadingZeros(words[w]);
      }
    }
    return -1;
  }

  private static MigrationStreamException fail(MigrationInput in, String what, long offset) {
    MigrationStreamException e = new MigrationStreamException(what, offset);
    in.fail(e);
    return e;
  }
}
