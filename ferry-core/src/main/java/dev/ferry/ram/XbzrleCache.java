package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The source's XBZRLE page cache (QEMU's page_cache.c): direct-mapped, a power-of-two number of
 * pages, indexed by the page's position in RAM. A page is delta-encoded only on a hit for the same
 * page; a miss inserts it.
 */
final class XbzrleCache implements AutoCloseable {
  private static final int PAGE = StreamHeader.TARGET_PAGE_SIZE;
  private final Arena arena = Arena.ofConfined();
  private final MemorySegment pages;
  private final long[] tags;
  private final int mask;

  XbzrleCache(long bytes) {
    long n = Long.highestOneBit(Math.max(1, bytes / PAGE));
    if (n > (1 << 24)) {
      n = 1 << 24;
    }
    this.pages = arena.allocate(n * PAGE, PAGE);
    this.tags = new long[(int) n];
    Arrays.fill(tags, -1);
    this.mask = (int) n - 1;
  }

  private static long tag(int block, long page) {
    return ((long) block << 40) | page;
  }

  private int slot(int block, long page) {
    return (int) ((page * 31 + block) & mask);
  }

  /** The cached copy of the page, or null. */
  MemorySegment lookup(int block, long page) {
    int s = slot(block, page);
    return tags[s] == tag(block, page) ? pages.asSlice((long) s * PAGE, PAGE) : null;
  }

  void insert(int block, long page, MemorySegment data) {
    int s = slot(block, page);
    tags[s] = tag(block, page);
    MemorySegment.copy(data, 0, pages, (long) s * PAGE, PAGE);
  }

  void invalidate(int block, long page) {
    int s = slot(block, page);
    if (tags[s] == tag(block, page)) {
      tags[s] = -1;
    }
  }

  @Override
  public void close() {
    arena.close();
  }
}
