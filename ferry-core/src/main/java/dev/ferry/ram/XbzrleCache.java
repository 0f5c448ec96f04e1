package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The source's XBZRLE page cache (QEMU's page_cache.c): direct-mapped, a power-of-two number of
 * pages, indexed by the page's position in RAM. A page is delta-encoded only on a hit for the same
 * page. A miss inserts the page unless its slot holds another page used in the last two dirty-sync
 * generations (QEMU's aging rule), so a working set larger than the cache keeps part of itself
 * cached instead of evicting itself round after round.
 */
final class XbzrleCache implements AutoCloseable {
  private static final int PAGE = StreamHeader.TARGET_PAGE_SIZE;
  private final Arena arena = Arena.ofConfined();
  private final MemorySegment pages;
  private final long[] tags;
  /** Sync generation at which each slot was last inserted or hit. */
  private final long[] ages;
  private final int mask;

  XbzrleCache(long bytes) {
    long n = Long.highestOneBit(Math.max(1, bytes / PAGE));
    if (n > (1 << 24)) {
      n = 1 << 24;
    }
    this.pages = arena.allocate(n * PAGE, PAGE);
    this.tags = new long[(int) n];
    this.ages = new long[(int) n];
    Arrays.fill(tags, -1);
    this.mask = (int) n - 1;
  }

  private static long tag(int block, long page) {
    return ((long) block << 40) | page;
  }

  private int slot(int block, long page) {
    return (int) ((page * 31 + block) & mask);
  }

  /** The cached copy of the page (marking it used in {@code generation}), or null. */
  MemorySegment lookup(int block, long page, long generation) {
    int s = slot(block, page);
    if (tags[s] != tag(block, page)) {
      return null;
    }
    ages[s] = generation;
    return pages.asSlice((long) s * PAGE, PAGE);
  }

  /**
   * Caches the page unless its slot holds another page used in the last two generations; returns
   * the cached copy, or null when the page was not cached.
   */
  MemorySegment insert(int block, long page, MemorySegment data, long generation) {
    int s = slot(block, page);
    long t = tag(block, page);
    if (tags[s] != -1 && tags[s] != t && ages[s] + 2 > generation) {
      return null;
    }
    tags[s] = t;
    ages[s] = generation;
    MemorySegment.copy(data, 0, pages, (long) s * PAGE, PAGE);
    return pages.asSlice((long) s * PAGE, PAGE);
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
