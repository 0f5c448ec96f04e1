package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Which target pages of a machine's RAM blocks guest writes have dirtied since the last harvest
 * (QEMU's dirty log plus {@code migration_bitmap_sync}). A RAM saver {@link #start()}s it, sends
 * everything once, then per round calls {@link #harvestInto} to learn what to send again.
 *
 * <h2>How it stays cheap</h2>
 *
 * Every writer (one {@link GuestMemory} per vCPU thread) owns two private bitmap sets, one per
 * phase of a {@link StepPhaser} (HdrHistogram's WriterReaderPhaser protocol). A vCPU enters a
 * critical section once per guest step (thousands of accesses) and, inside it, marks a written
 * page with a plain {@code word |= bit} in its own set for the current phase: no atomic
 * instruction, no fence and no shared cache line per write. With logging off the per-write cost is
 * one test of a plain boolean field captured at step entry. The cost of a step boundary is two
 * uncontended atomic increments, logging on or off.
 *
 * <h2>Why no mark is lost</h2>
 *
 * A harvest (one reader at a time, under a lock) flips the phaser and waits until every writer
 * that entered the old phase has left it; a writer leaves within one guest step. Then:
 *
 * <ol>
 *   <li>Every write W a writer made in the old phase was made inside a critical section that
 *       ended before the flip returned, and its mark went to that writer's old-phase set. The
 *       exit increment is a volatile write the reader's wait loop reads, so W and its mark
 *       happen-before everything the harvester does next: draining the old-phase sets (reading
 *       and zeroing words with plain accesses, now that no writer touches them) and then reading
 *       the pages it returned. The reader therefore sees W's data or something newer — never
 *       older. (Order of data store and mark inside the section does not matter here, unlike a
 *       shared-bitmap design where the mark must follow the store and a "bit already set, skip the
 *       atomic OR" shortcut needs a full fence between the store and the bit read, because x86 may
 *       let that read pass the buffered store.)
 *   <li>A write made in the new phase is marked in the new-phase set, which this harvest does not
 *       touch; the next harvest drains it. A write that straddles the flip in real time belongs to
 *       exactly one phase: the one its critical section entered.
 *   <li>The zeroing of a drained set happens-before the writer uses that set again: the writer
 *       enters it only after the following flip, and its entering getAndAdd reads that flip's
 *       swap, which follows the zeroing in the reader's program order.
 * </ol>
 *
 * Hence the last harvest after the writers stop returns every page whose last write was not yet
 * returned, and a replay that copies returned pages after each harvest ends identical to RAM
 * ({@code DirtyLogConcurrencyTest} checks exactly that). The same flip makes {@link #start()}
 * exact: once it returns, every step that began with logging off has ended, so every later write
 * is marked.
 *
 * <h2>Starting waits for step boundaries</h2>
 *
 * A RAM saver's setup waits twice for the step each running vCPU is in: {@link #start()} and the
 * discard of old marks after it (dropping that discard let marks of the first instants reach the
 * first harvest and made FerryPostcopyAnalyzeTest see pages sent twice after the postcopy switch).
 * A fresh guest's {@code stress} step (4096 first-touch page faults) lasts tens of milliseconds. A
 * start without step boundaries (each write looks at a flip count and moves its step into the new
 * phase) was built and measured: a fresh 1 GiB {@code stress} guest's setup-time went to 4 ms, but
 * DirtyLogBench's stress increments lost 45% with the log off (77 to 44 writes/us: the per-write
 * look kept the JIT from its loop code), so it is not here.
 *
 * <p>A writer outside an explicit step pays an enter/exit pair per access; vCPUs always run in
 * steps. A harvest waits for at most one step of every running vCPU; steps never block inside a
 * critical section (idle waits leave it, see {@link GuestMemory#idle}).
 */
public final class DirtyLog {
  private final List<RamBlock> blocks;
  private final int[] wordsPerBlock;
  private final StepPhaser phaser = new StepPhaser();
  private final CopyOnWriteArrayList<Writer> writers = new CopyOnWriteArrayList<>();
  private final ReentrantLock readerLock = new ReentrantLock();
  private volatile boolean active;
  private volatile long syncCount;

  /** A log over {@code blocks}; bitmaps passed to {@link #harvestInto} follow the same order. */
  public DirtyLog(List<RamBlock> blocks) {
    this.blocks = List.copyOf(blocks);
    this.wordsPerBlock = new int[this.blocks.size()];
    for (int i = 0; i < wordsPerBlock.length; i++) {
      long pages = this.blocks.get(i).usedLength() / StreamHeader.TARGET_PAGE_SIZE;
      wordsPerBlock[i] = Math.toIntExact((pages + 63) >>> 6);
    }
  }

  public List<RamBlock> blocks() {
    return blocks;
  }

  /**
   * How long {@link #start()}, {@link #stop()} and {@link #harvestInto} wait for a vCPU to finish
   * its current step before they throw an {@link IllegalStateException} (default 10 s; the machine
   * sets its stop timeout). An interrupt of the waiting thread ends the wait at once, the same way.
   */
  public void setStepWaitLimit(java.time.Duration limit) {
    phaser.setWaitLimit(limit.toNanos());
  }

  /** Fresh, all-clear bitmaps, one per block in block order. */
  public List<DirtyBitmap> newBitmaps() {
    return blocks.stream().map(DirtyBitmap::forBlock).toList();
  }

  /**
   * Turns logging on. When this returns, every guest write that starts later is marked. Pages
   * written before are not (a saver sends everything once after starting the log). Idempotent.
   */
  public void start() {
    readerLock.lock();
    try {
      active = true;
      phaser.flipPhase();
    } finally {
      readerLock.unlock();
    }
  }

  /**
   * Turns logging off; when this returns no step marks any more. Marks already made stay until the
   * next harvest (or {@link #discardPending()}).
   */
  public void stop() {
    readerLock.lock();
    try {
      active = false;
      phaser.flipPhase();
    } finally {
      readerLock.unlock();
    }
  }

  public boolean isActive() {
    return active;
  }

  /** Number of harvests so far (QEMU's dirty-sync-count). */
  public long syncCount() {
    return syncCount;
  }

  /**
   * Moves every mark made since the previous harvest into {@code perBlock} (ORed in; one bitmap per
   * block, in {@link #blocks()} order) and clears the marks. Writers keep running; the call waits
   * at most one guest step for each of them.
   *
   * @return how many bits this call set that were clear in {@code perBlock} before
   */
  public long harvestInto(List<DirtyBitmap> perBlock) {
    Objects.requireNonNull(perBlock, "perBlock");
    if (perBlock.size() != blocks.size()) {
      throw new IllegalArgumentException("need " + blocks.size() + " bitmaps, got " + perBlock.size());
    }
    for (int b = 0; b < wordsPerBlock.length; b++) {
      if (perBlock.get(b).words().length != wordsPerBlock[b]) {
        throw new IllegalArgumentException("bitmap " + b + " does not match block " + blocks.get(b).name());
      }
    }
    readerLock.lock();
    try {
      int ended = phaser.flipPhase();
      long added = 0;
      for (Writer w : writers) {
        // closed is written after the writer's last exit: seeing it means both sets are quiescent
        boolean closed = w.closed;
        added += drain(w.sets[ended], perBlock);
        if (closed) {
          added += drain(w.sets[1 - ended], perBlock);
          writers.remove(w);
        }
      }
      syncCount++;
      return added;
    } finally {
      readerLock.unlock();
    }
  }

  /** Harvests and throws the marks away. */
  public void discardPending() {
    harvestInto(newBitmaps());
  }

  private static long drain(long[][] set, List<DirtyBitmap> perBlock) {
    if (set == null) {
      return 0;
    }
    long added = 0;
    for (int b = 0; b < set.length; b++) {
      long[] from = set[b];
      long[] into = perBlock.get(b).words();
      for (int i = 0; i < from.length; i++) {
        long v = from[i];
        if (v != 0) {
          from[i] = 0;
          added += Long.bitCount(v & ~into[i]);
          into[i] |= v;
        }
      }
    }
    return added;
  }

  /** Registers one writer thread's private mark sets. */
  Writer newWriter() {
    Writer w = new Writer();
    writers.add(w);
    return w;
  }

  StepPhaser phaser() {
    return phaser;
  }

  /** Read by a writer right after entering a critical section. */
  boolean activeForStep() {
    return active;
  }

  /** One writer's marks: {@code sets[phase][block][word]}, allocated on first logged step. */
  final class Writer {
    final long[][][] sets = new long[2][][];
    volatile boolean closed;

    /** The set for {@code phase}; called inside a critical section of that phase only. */
    long[][] set(int phase) {
      long[][] s = sets[phase];
      if (s == null) {
        s = new long[wordsPerBlock.length][];
        for (int b = 0; b < s.length; b++) {
          s[b] = new long[wordsPerBlock[b]];
        }
        sets[phase] = s; // published to the harvester by the phaser (exit happens-before drain)
      }
      return s;
    }
  }
}
