package dev.ferry.kv.store;

import java.util.Arrays;

/**
 * The keyspace's bookkeeping, outside the region it describes: where the bucket array is, how many
 * keys there are, the allocator's bump pointer and free lists, and counters for {@code INFO}. It is
 * the state of a device (saved and loaded with its VMState description at the switch-over), so it
 * must only change inside guest steps, like the region itself. A fresh state ({@link
 * #bucketCount} 0) means an unformatted region.
 */
public final class KvState {
  /** Size classes of the allocator: blocks of 2^{@link KvAllocator#MIN_CLASS_SHIFT} .. bytes. */
  public static final int CLASS_COUNT = 40;

  /** Bytes of the region this state describes (a load checks the destination's region is as big). */
  public final long regionBytes;

  public long bucketsOffset;
  public long bucketCount;
  public long keyCount;
  /** Keys that carry a time to live. */
  public long expiresCount;
  /** Next never-allocated byte of the region. */
  public long heapTop;
  /** Bytes of all blocks in use (headers included). */
  public long allocatedBytes;
  /** Head of each size class's free list (payload offsets, 0 = empty). */
  public long[] freeHeads = new long[CLASS_COUNT];
  /** Bucket where the next active expiry sweep starts. */
  public long expireCursor;
  public long commandsProcessed;
  public long expiredKeys;
  public long keyspaceHits;
  public long keyspaceMisses;

  public KvState(long regionBytes) {
    this.regionBytes = regionBytes;
  }

  /** Back to an unformatted region's state. */
  public void reset() {
    bucketsOffset = 0;
    bucketCount = 0;
    keyCount = 0;
    expiresCount = 0;
    heapTop = 0;
    allocatedBytes = 0;
    Arrays.fill(freeHeads, 0);
    expireCursor = 0;
  }

  public boolean formatted() {
    return bucketCount != 0;
  }
}
