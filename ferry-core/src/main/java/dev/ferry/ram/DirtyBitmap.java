package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.util.Arrays;

/**
 * One bit per target (4 KiB) page of one RAM block. Plain and single-threaded: it is what a dirty
 * log is harvested into ({@link DirtyLog#harvestInto}) and what a RAM saver walks to find the pages
 * it still has to send (QEMU's per-block {@code bmap}).
 */
public final class DirtyBitmap {
  private final long pageCount;
  private final long[] words;

  public DirtyBitmap(long pageCount) {
    if (pageCount < 0 || (pageCount + 63) / 64 > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("page count out of range: " + pageCount);
    }
    this.pageCount = pageCount;
    this.words = new long[(int) ((pageCount + 63) >>> 6)];
  }

  /** An all-clear bitmap covering every target page of {@code block}. */
  public static DirtyBitmap forBlock(RamBlock block) {
    return new DirtyBitmap(block.usedLength() / StreamHeader.TARGET_PAGE_SIZE);
  }

  public long pageCount() {
    return pageCount;
  }

  public boolean get(long page) {
    check(page);
    return (words[(int) (page >>> 6)] & (1L << page)) != 0;
  }

  public void set(long page) {
    check(page);
    words[(int) (page >>> 6)] |= 1L << page;
  }

  public void clear(long page) {
    check(page);
    words[(int) (page >>> 6)] &= ~(1L << page);
  }

  /** Clears the bit and says whether it was set (QEMU's test_and_clear_bit). */
  public boolean testAndClear(long page) {
    check(page);
    int w = (int) (page >>> 6);
    long bit = 1L << page;
    boolean was = (words[w] & bit) != 0;
    words[w] &= ~bit;
    return was;
  }

  /** The first set page at or after {@code fromPage}, or -1. */
  public long nextSetBit(long fromPage) {
    if (fromPage < 0) {
      throw new IndexOutOfBoundsException("page " + fromPage);
    }
    if (fromPage >= pageCount) {
      return -1;
    }
    int w = (int) (fromPage >>> 6);
    long word = words[w] & (-1L << fromPage);
    while (true) {
      if (word != 0) {
        long page = ((long) w << 6) + Long.numberOfTrailingZeros(word);
        return page < pageCount ? page : -1;
      }
      if (++w == words.length) {
        return -1;
      }
      word = words[w];
    }
  }

  /** Number of set pages. */
  public long cardinality() {
    long n = 0;
    for (long w : words) {
      n += Long.bitCount(w);
    }
    return n;
  }

  public void setAll() {
    Arrays.fill(words, -1L);
    int tail = (int) (pageCount & 63);
    if (tail != 0) {
      words[words.length - 1] = (1L << tail) - 1;
    }
  }

  public void clearAll() {
    Arrays.fill(words, 0L);
  }

  /** The backing words (bit {@code p & 63} of word {@code p >>> 6} is page p); for the dirty log. */
  long[] words() {
    return words;
  }

  private void check(long page) {
    if (page < 0 || page >= pageCount) {
      throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
    }
  }

  @Override
  public String toString() {
    return "DirtyBitmap[" + cardinality() + "/" + pageCount + " pages set]";
  }
}
