package dev.ferry.kv.store;

/**
 * A segregated-fit allocator inside the region: blocks of a power of two bytes, an 8-byte header
 * before each payload, one free list per size class threaded through the free payloads, and a bump
 * pointer for never-used space. Offsets are region offsets; 0 is null (the region's first {@link
 * #RESERVED_BYTES} are never allocated).
 *
 * <pre>
 *  block:   +0 header  u64  TAG_USED | class      (TAG_FREE | class when free)
 *           +8 payload      (free: u64 next free payload of the class)
 * </pre>
 *
 * The header's tag catches a double free or a stray offset ({@link IllegalStateException}). All
 * bookkeeping is in {@link KvState}.
 */
public final class KvAllocator {
  /** Smallest block: 32 bytes. */
  public static final int MIN_CLASS_SHIFT = 5;

  public static final int HEADER_BYTES = 8;

  /** Region bytes before the heap (offset 0 must never be a payload). */
  public static final long RESERVED_BYTES = 64;

  private static final long TAG_USED = 0x4b56_5553_0000_0000L; // "KVUS"
  private static final long TAG_FREE = 0x4b56_4652_0000_0000L; // "KVFR"
  private static final long TAG_MASK = 0xffff_ffff_0000_0000L;

  private final KvMemory memory;
  private final KvState state;

  public KvAllocator(KvMemory memory, KvState state) {
    this.memory = memory;
    this.state = state;
  }

  /** Starts an empty heap. */
  public void format() {
    state.heapTop = RESERVED_BYTES;
    state.allocatedBytes = 0;
    java.util.Arrays.fill(state.freeHeads, 0);
  }

  /** Size class of a block that holds {@code payloadBytes}. */
  static int classOf(long payloadBytes) {
    long need = Math.max(payloadBytes + HEADER_BYTES, 1L << MIN_CLASS_SHIFT);
    int shift = 64 - Long.numberOfLeadingZeros(need - 1);
    return shift - MIN_CLASS_SHIFT;
  }

  static long blockBytes(int sizeClass) {
    return 1L << (sizeClass + MIN_CLASS_SHIFT);
  }

  /** A payload of at least {@code bytes}, or 0 when the region is full. */
  public long allocate(long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("negative allocation: " + bytes);
    }
    int c = classOf(bytes);
    if (c >= KvState.CLASS_COUNT) {
      return 0;
    }
    long block;
    long head = state.freeHeads[c];
    if (head != 0) {
      block = head - HEADER_BYTES;
      long h = memory.getLong(block);
      if (h != (TAG_FREE | c)) {
        throw new IllegalStateException("kv heap corrupt: free list " + c + " holds block " + block + " with header 0x" + Long.toHexString(h));
      }
      state.freeHeads[c] = memory.getLong(head);
    } else {
      long size = blockBytes(c);
      if (state.heapTop > memory.byteSize() - size) {
        return 0;
      }
      block = state.heapTop;
      state.heapTop += size;
    }
    memory.putLong(block, TAG_USED | c);
    state.allocatedBytes += blockBytes(c);
    return block + HEADER_BYTES;
  }

  /** Usable bytes of an allocated payload (its block's size less the header). */
  public long capacity(long payload) {
    return blockBytes(usedClass(payload)) - HEADER_BYTES;
  }

  public void free(long payload) {
    int c = usedClass(payload);
    long block = payload - HEADER_BYTES;
    memory.putLong(block, TAG_FREE | c);
    memory.putLong(payload, state.freeHeads[c]);
    state.freeHeads[c] = payload;
    state.allocatedBytes -= blockBytes(c);
  }

  private int usedClass(long payload) {
    long block = payload - HEADER_BYTES;
    if (block < RESERVED_BYTES || payload >= state.heapTop) {
      throw new IllegalStateException("kv heap: offset " + payload + " is outside the heap [" + RESERVED_BYTES + ", " + state.heapTop + ")");
    }
    long h = memory.getLong(block);
    if ((h & TAG_MASK) != TAG_USED || (h & ~TAG_MASK) >= KvState.CLASS_COUNT) {
      throw new IllegalStateException("kv heap: offset " + payload + " is no allocated block (header 0x" + Long.toHexString(h) + ")");
    }
    return (int) (h & ~TAG_MASK);
  }
}
