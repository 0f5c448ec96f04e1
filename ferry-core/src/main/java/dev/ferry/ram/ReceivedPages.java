package dev.ferry.ram;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The postcopy destination's received-pages bitmap (QEMU's {@code receivedmap}): one bit per
 * target page of every block, 1 = the page's content is in guest memory.
 *
 * <p>Ordering: the loader writes a page and only then sets its bit with release semantics
 * ({@link #markReceived}); a reader that sees the bit with {@link #isReceived} (acquire) sees the
 * page's content. On x86 the acquire load is a plain load plus a compiler barrier. Once every page
 * of a block is in, {@link #complete(int)} turns true and accessors skip the test.
 *
 * <p>Bits are only cleared ({@link #clear}) before the destination runs (ADVISE, DISCARD), by the
 * loading thread.
 */
public final class ReceivedPages {
  private static final int SHIFT = 12;
  private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

  private final List<RamBlock> blocks;
  private final long[][] words;
  /** Pages not yet received, per block. */
  private final AtomicLongArray missing;
  /** Plain flags: a stale false only costs one more bitmap test. */
  private final boolean[] complete;

  /** All pages of all blocks start missing. */
  public ReceivedPages(List<RamBlock> blocks) {
    this.blocks = List.copyOf(blocks);
    this.words = new long[blocks.size()][];
    this.missing = new AtomicLongArray(blocks.size());
    this.complete = new boolean[blocks.size()];
    for (int i = 0; i < blocks.size(); i++) {
      long pages = blocks.get(i).targetPageCount();
      words[i] = new long[(int) ((pages + 63) >>> 6)];
      missing.set(i, pages);
    }
  }

  public int blockCount() {
    return blocks.size();
  }

  public RamBlock block(int index) {
    return blocks.get(index);
  }

  /** The index of {@code b} (identity), or -1. */
  public int indexOf(RamBlock b) {
    for (int i = 0; i < blocks.size(); i++) {
      if (blocks.get(i) == b) {
        return i;
      }
    }
    return -1;
  }

  /** True once every page of block {@code block} has arrived. */
  public boolean complete(int block) {
    return complete[block];
  }

  /** Whether target page {@code page} of block {@code block} is in (acquire). */
  public boolean isReceived(int block, long page) {
    long w = (long) WORDS.getAcquire(words[block], (int) (page >>> 6));
    return (w & (1L << page)) != 0;
  }

  /** Whether the target page holding byte {@code offset} is in. */
  public boolean isReceivedAt(int block, long offset) {
    return isReceived(block, offset >>> SHIFT);
  }

  /**
   * Publishes {@code count} target pages from {@code first} as received (release: after the
   * caller wrote their content). Returns how many of them were missing before.
   */
  public long markReceived(int block, long first, long count) {
    long[] ws = words[block];
    long added = 0;
    long p = first;
    long end = first + count;
    while (p < end) {
      int i = (int) (p >>> 6);
      int lo = (int) (p & 63);
      int n = (int) Math.min(64 - lo, end - p);
      long mask = n == 64 ? -1L : ((1L << n) - 1) << lo;
      long old = (long) WORDS.getAndBitwiseOrRelease(ws, i, mask);
      added += Long.bitCount(mask & ~old);
      p += n;
    }
    if (added > 0 && missing.addAndGet(block, -added) == 0) {
      complete[block] = true;
    }
    return added;
  }

  /** Marks {@code count} target pages from {@code first} missing again (discard; before the guest runs). */
  public void clear(int block, long first, long count) {
    long[] ws = words[block];
    long removed = 0;
    for (long p = first; p < first + count; p++) {
      int i = (int) (p >>> 6);
      long bit = 1L << p;
      long old = (long) WORDS.getAndBitwiseAndRelease(ws, i, ~bit);
      if ((old & bit) != 0) {
        removed++;
      }
    }
    if (removed > 0) {
      missing.addAndGet(block, removed);
      complete[block] = false;
    }
  }

  /**
   * Block {@code block}'s bitmap in QEMU's RECV_BITMAP encoding (postcopy recovery): the 64-bit
   * words little-endian, so bit i of byte i/8 is target page i; the length is a multiple of 8.
   */
  public byte[] toLittleEndianBytes(int block) {
    long[] ws = words[block];
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(ws.length * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < ws.length; i++) {
      b.putLong((long) WORDS.getAcquire(ws, i));
    }
    return b.array();
  }

  /** Pages of block {@code block} not yet received. */
  public long missingPages(int block) {
    return missing.get(block);
  }

  /** Pages not yet received over all blocks. */
  public long missingPages() {
    long n = 0;
    for (int i = 0; i < blocks.size(); i++) {
      n += missing.get(i);
    }
    return n;
  }
}
