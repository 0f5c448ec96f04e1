package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Page digests of a RAM block for exact comparisons ({@code ferry-memory-digest}): the CRC32C of
 * every 4 KiB target page, in page order.
 *
 * <p>CRC32C because the JDK's implementation is an intrinsic (the CPU's {@code crc32} instruction,
 * several streams interleaved), so hashing runs near memory-read speed with no dependency beyond the
 * JDK; a page that differs escapes with probability 2<sup>-32</sup>, and CRCs catch every burst
 * error up to 32 bits outright. {@code MemoryDigest} folds the page values into 64-bit block digests.
 *
 * <p>Never-touched pages of a lazily committed block are not read: {@code /proc/self/pagemap} says
 * they are neither present nor swapped, so they read as zeros, and reading them would fault in (and
 * commit) a page per 4 KiB of an idle multi-GiB guest. They get {@link #ZERO_PAGE_CRC} without being
 * touched. A fresh {@link PageMap} is opened for every call and read as the walk goes, so nothing of
 * an earlier read is reused; this is exact only while no one writes the block, which is why callers
 * digest a stopped machine (a write after the window was read could otherwise land in a page this
 * walk already counted as zero).
 */
public final class RamDigest {
  private static final int PAGE = StreamHeader.TARGET_PAGE_SIZE;
  /** Bytes mapped into one ByteBuffer at a time (a buffer holds less than 2 GiB). */
  private static final long CHUNK = 1L << 30;

  /** The CRC32C of a 4 KiB page of zeros. */
  public static final int ZERO_PAGE_CRC;

  static {
    CRC32C c = new CRC32C();
    c.update(new byte[PAGE]);
    ZERO_PAGE_CRC = (int) c.getValue();
  }

  private RamDigest() {}

  /**
   * The CRC32C of every target page of {@code block}, index = offset / 4096. The caller makes sure
   * nothing writes the block meanwhile (a stopped machine, no load in progress).
   */
  public static int[] pageCrcs(RamBlock block) {
    long pages = block.targetPageCount();
    if (pages > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(block + " has too many pages to digest: " + pages);
    }
    int[] crcs = new int[(int) pages];
    MemorySegment mem = block.memory();
    CRC32C crc = new CRC32C();
    try (PageMap pageMap = block.isLazilyCommitted() ? PageMap.open() : null) {
      long length = block.usedLength();
      for (long base = 0; base < length; base += CHUNK) {
        int n = (int) Math.min(CHUNK, length - base);
        ByteBuffer buf = mem.asSlice(base, n).asByteBuffer();
        int index = (int) (base / PAGE);
        for (int p = 0; p < n; p += PAGE, index++) {
          // untouched: reads as zeros, and reading it would commit it (see the class comment)
          if (pageMap != null && pageMap.untouched(mem.address() + base + p)) {
            crcs[index] = ZERO_PAGE_CRC;
            continue;
          }
          buf.clear().position(p).limit(p + PAGE);
          crc.reset();
          crc.update(buf);
          crcs[index] = (int) crc.getValue();
        }
      }
    }
    return crcs;
  }
}
