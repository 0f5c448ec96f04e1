package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.locks.LockSupport;

/**
 * The only way guest programs touch RAM: reads and writes at a byte offset in a block (by index in
 * {@link GuestRam#blocks()}), multi-byte values little-endian as on an x86 guest. Writes mark their
 * pages in the {@link DirtyLog} while it is active; accesses go through the {@link
 * PageFaultHandler} when one is installed.
 *
 * <p>One handle per thread, not thread-safe. A vCPU brackets each guest step with {@link
 * #enterStep()} / {@link #exitStep()}: inside a step, the logging flag and the fault hook are read
 * once and a mark is a plain OR into this handle's private bitmap (see {@link DirtyLog} for why
 * that is safe). Accesses outside a step are wrapped in a step of their own, which is correct but
 * costs two atomic increments per access.
 */
public final class GuestMemory implements AutoCloseable {
  private static final ValueLayout.OfInt LE_INT =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LE_LONG =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final int PAGE_SHIFT = 12;
  private static final int PAGE = StreamHeader.TARGET_PAGE_SIZE;

  private final GuestRam ram;
  private final MemorySegment[] segments;
  private final DirtyLog log;
  private final DirtyLog.Writer writer;
  private final StepPhaser phaser;

  private int depth;
  private long enterValue;
  /** {@link DirtyLog#flips()} when this critical section entered. */
  private int flipsAtEntry;
  private boolean logging;
  private long[][] marks;
  private PageFaultHandler faults;
  private boolean closed;
  private boolean stepped;

  GuestMemory(GuestRam ram) {
    this.ram = ram;
    this.segments = ram.blocks().stream().map(RamBlock::memory).toArray(MemorySegment[]::new);
    this.log = ram.dirtyLog();
    this.writer = log.newWriter();
    this.phaser = log.phaser();
  }

  // ---------------------------------------------------------------- steps

  /** Begins a guest step (nestable). Never blocks. */
  public void enterStep() {
    if (depth++ == 0) {
      if (closed) {
        depth = 0;
        throw new IllegalStateException("guest memory handle is closed");
      }
      if (!stepped) {
        stepped = true;
        ram.noteGuestStep(); // once per handle: RAM may hold guest data from now on
      }
      enterPhase();
      faults = ram.pageFaultHandler();
    }
  }

  /** Enters the current phase of the dirty log's phaser and reads the logging flag for it. */
  private void enterPhase() {
    long e = phaser.writerEnter();
    enterValue = e;
    flipsAtEntry = log.flips();
    logging = log.activeForStep();
    marks = logging ? writer.set(StepPhaser.phaseOf(e)) : null;
  }

  /**
   * First thing of every write: when the dirty log flipped its phase since this critical section
   * entered, leave the old phase and enter the new one before storing (DirtyLog, "A flip does not
   * wait for whole steps"). One volatile read of a line that changes only per flip.
   */
  private void followFlip() {
    if (log.flips() != flipsAtEntry) {
      phaser.writerExit(enterValue);
      enterPhase();
    }
  }

  /** Ends the step begun by the matching {@link #enterStep()}. */
  public void exitStep() {
    if (depth <= 0) {
      throw new IllegalStateException("exitStep without enterStep");
    }
    if (--depth == 0) {
      logging = false;
      marks = null;
      faults = null;
      phaser.writerExit(enterValue);
    }
  }

  public boolean inStep() {
    return depth > 0;
  }

  /**
   * Waits up to {@code nanos} (a guest halt), outside the step's critical section so that a dirty
   * log harvest does not wait for it; {@link LockSupport#unpark} of this thread ends it early
   * (pause does that). The logging flag and fault hook are read afresh afterwards.
   */
  public void idle(long nanos) {
    int saved = depth;
    if (saved > 0) {
      depth = 1;
      exitStep();
    }
    LockSupport.parkNanos(this, nanos);
    if (saved > 0) {
      enterStep();
      depth = saved;
    }
  }

  // ---------------------------------------------------------------- layout

  public int blockCount() {
    return segments.length;
  }

  public RamBlock block(int index) {
    return ram.blocks().get(index);
  }

  public long blockLength(int index) {
    return segments[index].byteSize();
  }

  /** Target (4 KiB) pages in block {@code index}. */
  public long pageCount(int index) {
    return segments[index].byteSize() >>> PAGE_SHIFT;
  }

  // ---------------------------------------------------------------- reads

  public byte getByte(int block, long offset) {
    present(block, offset, 1);
    return segments[block].get(ValueLayout.JAVA_BYTE, offset);
  }

  public int getInt(int block, long offset) {
    present(block, offset, 4);
    return segments[block].get(LE_INT, offset);
  }

  public long getLong(int block, long offset) {
    present(block, offset, 8);
    return segments[block].get(LE_LONG, offset);
  }

  /** Copies {@code length} bytes of guest memory into {@code dst}. */
  public void read(int block, long offset, byte[] dst, int dstOffset, int length) {
    present(block, offset, length);
    MemorySegment.copy(segments[block], ValueLayout.JAVA_BYTE, offset, dst, dstOffset, length);
  }

  /** Reads target page {@code page} of the block into {@code dst} (4096 bytes). */
  public void readPage(int block, long page, byte[] dst) {
    read(block, page << PAGE_SHIFT, dst, 0, PAGE);
  }

  // ---------------------------------------------------------------- writes

  public void putByte(int block, long offset, byte value) {
    if (depth == 0) {
      outsideStep(() -> putByte(block, offset, value));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, 1);
    }
    followFlip();
    segments[block].set(ValueLayout.JAVA_BYTE, offset, value);
    if (logging) {
      markPage(block, offset >>> PAGE_SHIFT);
    }
  }

  /** Adds {@code delta} to the byte at {@code offset} (wrapping) and returns the new value. */
  public byte addByte(int block, long offset, int delta) {
    if (depth == 0) {
      return outsideStep(() -> addByte(block, offset, delta));
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, 1);
    }
    followFlip();
    MemorySegment s = segments[block];
    byte v = (byte) (s.get(ValueLayout.JAVA_BYTE, offset) + delta);
    s.set(ValueLayout.JAVA_BYTE, offset, v);
    if (logging) {
      markPage(block, offset >>> PAGE_SHIFT);
    }
    return v;
  }

  public void putInt(int block, long offset, int value) {
    if (depth == 0) {
      outsideStep(() -> putInt(block, offset, value));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, 4);
    }
    followFlip();
    segments[block].set(LE_INT, offset, value);
    if (logging) {
      markSmall(block, offset, 4);
    }
  }

  public void putLong(int block, long offset, long value) {
    if (depth == 0) {
      outsideStep(() -> putLong(block, offset, value));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, 8);
    }
    followFlip();
    segments[block].set(LE_LONG, offset, value);
    if (logging) {
      markSmall(block, offset, 8);
    }
  }

  /** Sets {@code length} bytes to {@code value}. */
  public void fill(int block, long offset, long length, byte value) {
    if (depth == 0) {
      outsideStep(() -> fill(block, offset, length, value));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, length);
    }
    followFlip();
    segments[block].asSlice(offset, length).fill(value);
    if (logging) {
      markRange(block, offset, length);
    }
  }

  /** Copies {@code length} bytes from {@code src} into guest memory. */
  public void write(int block, long offset, byte[] src, int srcOffset, int length) {
    if (depth == 0) {
      outsideStep(() -> write(block, offset, src, srcOffset, length));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(block, offset, length);
    }
    followFlip();
    MemorySegment.copy(src, srcOffset, segments[block], ValueLayout.JAVA_BYTE, offset, length);
    if (logging) {
      markRange(block, offset, length);
    }
  }

  /** Copies within guest memory (overlapping ranges behave as if through a temporary buffer). */
  public void copy(int srcBlock, long srcOffset, int dstBlock, long dstOffset, long length) {
    if (depth == 0) {
      outsideStep(() -> copy(srcBlock, srcOffset, dstBlock, dstOffset, length));
      return;
    }
    if (faults != null) {
      faults.ensurePresent(srcBlock, srcOffset, length);
      faults.ensurePresent(dstBlock, dstOffset, length);
    }
    followFlip();
    MemorySegment.copy(segments[srcBlock], srcOffset, segments[dstBlock], dstOffset, length);
    if (logging) {
      markRange(dstBlock, dstOffset, length);
    }
  }

  /** Writes a whole target page from {@code src} (4096 bytes). */
  public void writePage(int block, long page, byte[] src) {
    write(block, page << PAGE_SHIFT, src, 0, PAGE);
  }

  /** Sets a whole target page to {@code value}. */
  public void fillPage(int block, long page, byte value) {
    fill(block, page << PAGE_SHIFT, PAGE, value);
  }

  // ---------------------------------------------------------------- internals

  /** An access made outside any step runs in a step of its own (kept out of the hot methods). */
  private void outsideStep(Runnable access) {
    enterStep();
    try {
      access.run();
    } finally {
      exitStep();
    }
  }

  private byte outsideStep(java.util.function.Supplier<Byte> access) {
    enterStep();
    try {
      return access.get();
    } finally {
      exitStep();
    }
  }

  private void present(int block, long offset, long length) {
    PageFaultHandler f = depth > 0 ? faults : ram.pageFaultHandler();
    if (f != null) {
      f.ensurePresent(block, offset, length);
    }
  }

  /*
   * Marks skip the store when the bit is already set: the bitmap is private to this thread and
   * phase, so a plain read is exact. Skipping matters more than it looks: an unconditional store
   * occupies a store-buffer slot behind the guest's own (often cache-missing) store, which halved
   * random-write throughput in DirtyLogBench.
   */
  private void markPage(int block, long page) {
    long[] words = marks[block];
    int i = (int) (page >>> 6);
    long bit = 1L << page;
    long w = words[i];
    if ((w & bit) == 0) {
      words[i] = w | bit;
    }
  }

  /** Marks a write of at most one page: its first page, and its last when it crosses over. */
  private void markSmall(int block, long offset, int length) {
    long first = offset >>> PAGE_SHIFT;
    long last = (offset + length - 1) >>> PAGE_SHIFT;
    markPage(block, first);
    if (last != first) {
      markPage(block, last);
    }
  }

  private void markRange(int block, long offset, long length) {
    if (length <= 0) {
      return;
    }
    long first = offset >>> PAGE_SHIFT;
    long last = (offset + length - 1) >>> PAGE_SHIFT;
    long[] words = marks[block];
    for (long p = first; p <= last; p++) {
      words[(int) (p >>> 6)] |= 1L << p;
    }
  }

  /** Releases this handle; its pending marks are still harvested. Must not be inside a step. */
  @Override
  public void close() {
    if (depth > 0) {
      throw new IllegalStateException("close inside a guest step");
    }
    if (!closed) {
      closed = true;
      writer.closed = true;
    }
  }
}
