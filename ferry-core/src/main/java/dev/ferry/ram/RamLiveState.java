package dev.ferry.ram;

import dev.ferry.savevm.LiveLoad;
import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.LiveStateHandler;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.StreamHeader;
import dev.ferry.stream.VersionMismatchException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * A machine's RAM as live state: the {@code ram} section (version 4, instance 0), both directions
 * (QEMU's ram.c save and load handlers).
 *
 * <p>Saving: setup starts the dirty log, marks every page to send and writes the block list;
 * iterations walk the per-block "needs sending" bitmaps, sending zero pages as ZERO records and
 * others as PAGE records straight from guest memory (or XBZRLE deltas once the first pass is done,
 * when enabled); {@link #pendingExactBytes} syncs the dirty log into the bitmaps; completion syncs
 * once more and sends everything left. Loading: {@link RamLoader} into the same blocks, with the
 * stream's block list checked against them.
 *
 * <p>Everything of one save lives in the {@link LiveSave} that {@link #openSave} makes for it
 * (bitmaps, cursor, pagemap reader, xbzrle cache, listener), everything of one load in the {@link
 * Load} that {@link #openLoad} makes (its loader and options), never in this long-lived handler. The
 * machine's one dirty log serves one save at a time: a harvest hands marks to one consumer, and a
 * save's end stops the log, so a second save while one runs is refused (as QEMU refuses savevm
 * during a migration) instead of silently taking the other's marks.
 */
public final class RamLiveState implements LiveStateHandler {
  public static final String IDSTR = "ram";
  public static final int VERSION = 4;
  /** Pages between checks of the rate limit and the time slice (QEMU: 64). */
  static final int CHECK_EVERY_PAGES = 64;
  /** Longest an iteration runs before it yields (QEMU: 50 ms). */
  static final long MAX_ITERATE_NS = 50_000_000L;

  private final GuestRam ram;
  private final List<RamBlock> blocks;
  /** The save that owns the dirty log now, or null. */
  private final AtomicReference<Save> activeSave = new AtomicReference<>();

  public RamLiveState(GuestRam ram) {
    this.ram = ram;
    this.blocks = ram.blocks();
  }

  @Override
  public String idstr() {
    return IDSTR;
  }

  @Override
  public int instanceId() {
    return 0;
  }

  @Override
  public int version() {
    return VERSION;
  }

  /** A validated page request of the destination. */
  private record PageRequest(int block, long start, long length) {}

  @Override
  public boolean supportsPostcopy() {
    return true;
  }

  /** OR of the blocks' page sizes (POSTCOPY_ADVISE's summary). */
  public long pageSizeSummary() {
    long s = 0;
    for (RamBlock b : blocks) {
      s |= b.pageSize();
    }
    return s;
  }

  /** True while a save (a migration or a snapshot) owns the RAM's dirty log. */
  public boolean saving() {
    return activeSave.get() != null;
  }

  /**
   * The RAM state of one new save, with the {@link RamSaveOptions} in {@code options} (or {@link
   * RamSaveOptions#DEFAULTS}).
   *
   * @throws IllegalStateException while another save of this RAM runs
   */
  @Override
  public LiveSave openSave(SaveOptions options) {
    Save s = new Save(options.get(RamSaveOptions.class, RamSaveOptions.DEFAULTS), options.get(MultifdQueue.class, null));
    if (!activeSave.compareAndSet(null, s)) {
      throw new IllegalStateException("RAM is being saved already: a migration or snapshot save is in progress");
    }
    return s;
  }

  /** One save's RAM state (QEMU's RAMState of one migration). */
  private final class Save implements LiveSave, RamPostcopySave {
    private final RamSaveListener listener;
    private final boolean xbzrle;
    private final long xbzrleCacheBytes;
    private List<DirtyBitmap> bitmaps;
    private long dirtyPages;
    private long pass;
    private boolean firstRoundDone;
    private int cursorBlock;
    private long cursorPage;
    private RamRecordWriter writer;
    private XbzrleCache cache;
    private byte[] delta;
    private MemorySegment scratch;
    private PageMap pageMap;
    /** With mapped-ram: where pages go instead of page records (null otherwise). */
    private MappedRamWriter mapped;
    private final boolean mappedRam;
    private boolean closed;
    // plain counters: this save's thread is their only writer; published() hands them over
    private long zeroPages;
    private long normalPages;
    private long xbzrlePages;
    private long xbzrleBytes;
    private long xbzrleCacheMisses;
    private long xbzrleOverflows;
    /** POSTCOPY_ADVISE went out before setup: the block list carries huge-page blocks' page sizes. */
    private final boolean postcopyAdvised;
    // postcopy: after startPostcopy, requests first, whole host pages, no XBZRLE
    private volatile boolean postcopy;
    private final java.util.concurrent.ConcurrentLinkedQueue<PageRequest> requests =
        new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** The multifd channels (normal pages of precopy go there), or null. */
    private final MultifdQueue multifd;
    private MigrationOutput mainOut;

    Save(RamSaveOptions options, MultifdQueue multifd) {
      this.multifd = multifd;
      this.listener = options.listener();
      this.xbzrle = options.xbzrle();
      this.xbzrleCacheBytes = options.xbzrleCacheBytes();
      this.postcopyAdvised = options.postcopyRam();
      this.mappedRam = options.mappedRam();
    }

    @Override
    public void setup(MigrationOutput out) throws IOException {
      if (closed || bitmaps != null) {
        throw new IllegalStateException("RAM save set up twice or after its end");
      }
      DirtyLog log = ram.dirtyLog();
      bitmaps = log.newBitmaps();
      log.start();
      log.discardPending();
      dirtyPages = 0;
      for (DirtyBitmap b : bitmaps) {
        b.setAll();
        dirtyPages += b.pageCount();
      }
      pass = 1;
      listener.sync(pass, dirtyPages);
      firstRoundDone = false;
      cursorBlock = 0;
      cursorPage = 0;
      writer = new RamRecordWriter(out);
      mainOut = out;
      pageMap = PageMap.open();
      if (xbzrle) {
        cache = new XbzrleCache(xbzrleCacheBytes);
        delta = new byte[StreamHeader.TARGET_PAGE_SIZE];
        scratch = MemorySegment.ofArray(new byte[StreamHeader.TARGET_PAGE_SIZE]);
      }
      if (mappedRam) {
        mapped = new MappedRamWriter(out, blocks);
      }
      writer.writeBlockList(blocks, postcopyAdvised, mapped == null ? null : mapped::writeHeader);
      writeEos();
    }

    /**
     * The EOS of a RAM section; with multifd in precopy the channels sync first and the EOS is
     * flushed at once (a destination waits at it for the channels' SYNC, and channels blocked on a
     * parked destination must not wait for a main stream still in this side's buffer).
     */
    private void writeEos() throws IOException {
      if (multifd != null && !postcopy) {
        multifd.syncBeforeEos();
        writer.writeEos();
        mainOut.flush();
        return;
      }
      writer.writeEos();
    }

    /** The sum of all counters when last published (they only grow: equal sums, nothing new). */
    private long publishedSum = -1;

    /**
     * Hands the counters to the listener (per iteration, sync and completion; never per page), unless
     * nothing was counted since the last time (an iteration that found nothing to send).
     */
    private void publish() {
      long sum = zeroPages + normalPages + xbzrlePages + xbzrleCacheMisses + xbzrleOverflows;
      if (sum == publishedSum) {
        return;
      }
      publishedSum = sum;
      listener.published(
          new RamSaveListener.Counts(
              zeroPages, normalPages, xbzrlePages, xbzrleBytes,
              xbzrleCacheMisses, xbzrleOverflows));
    }

    @Override
    public boolean iterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
      if (postcopy) {
        return saveIteratePostcopy(rateLimited);
      }
      long start = System.nanoTime();
      int sinceCheck = 0;
      while (dirtyPages > 0) {
        if (!sendNext()) {
          break;
        }
        if (++sinceCheck >= CHECK_EVERY_PAGES) {
          sinceCheck = 0;
          if (rateLimited.getAsBoolean() || System.nanoTime() - start > MAX_ITERATE_NS) {
            break;
          }
        }
      }
      if (mapped != null) {
        mapped.flush();
      }
      writeEos();
      publish();
      return dirtyPages == 0;
    }

    /** Sends the next dirty page after the cursor (wrapping once); false when none is left. */
    private boolean sendNext() throws IOException {
      for (int tries = 0; tries <= blocks.size(); tries++) {
        DirtyBitmap bm = bitmaps.get(cursorBlock);
        long p = bm.nextSetBit(cursorPage);
        if (p >= 0) {
          bm.clear(p);
          dirtyPages--;
          cursorPage = p + 1;
          sendPage(blocks.get(cursorBlock), cursorBlock, p);
          return true;
        }
        cursorBlock++;
        cursorPage = 0;
        if (cursorBlock == blocks.size()) {
          cursorBlock = 0;
          firstRoundDone = true;
        }
      }
      return false;
    }

    private void sendPage(RamBlock block, int blockIndex, long page) throws IOException {
      long offset = page * StreamHeader.TARGET_PAGE_SIZE;
      MemorySegment memory = block.memory();
      // Shortcut: a never-touched page is sent as a zero page without reading it. Safe because the
      // pagemap answer is newer than the last harvest (sync() invalidates the window): a first
      // touch after the answer is still marked in the dirty log, and the next harvest sends the
      // page again. Same argument for the zero test on the data itself: a write after it is marked.
      boolean untouched =
          pageMap != null && block.isLazilyCommitted() && pageMap.untouched(memory.address() + offset);
      if (untouched || RamRecordWriter.isZeroPage(memory, offset)) {
        if (mapped != null) {
          mapped.zeroPage(blockIndex, page);
        } else {
          writer.writeZeroPage(block, offset);
        }
        zeroPages++;
        if (cache != null) {
          cache.invalidate(blockIndex, page);
        }
        return;
      }
      if (cache == null || postcopy) {
        sendNormalPage(block, blockIndex, offset);
        return;
      }
      // XBZRLE: what is sent and what is cached must be the same bytes (the destination's copy is
      // the base of the next delta), so work on a snapshot of the page the guest cannot change
      MemorySegment.copy(memory, offset, scratch, 0, StreamHeader.TARGET_PAGE_SIZE);
      MemorySegment old = firstRoundDone ? cache.lookup(blockIndex, page, pass) : null;
      if (old != null) {
        int n = Xbzrle.encode(old, scratch, delta, delta.length);
        if (n == 0) {
          // Shortcut: nothing sent. Safe because a page's cache slot always holds exactly the bytes
          // the destination has for it: every send of the page updates the slot (hit) or fills it
          // (miss), a zero send invalidates it, and a page whose slot holds another page is not
          // cached at all (direct-mapped). The snapshot in scratch is newer than the last harvest,
          // so a write after it is marked and sent later.
          return;
        }
        MemorySegment.copy(scratch, 0, old, 0, StreamHeader.TARGET_PAGE_SIZE);
        if (n > 0) {
          writer.writeXbzrlePage(block, offset, delta, n);
          xbzrlePages++;
          xbzrleBytes += n;
          return;
        }
        xbzrleOverflows++;
        writer.writePage(block, offset, old); // the cached copy, stable until the flush
      } else {
        if (firstRoundDone) {
          xbzrleCacheMisses++;
        }
        MemorySegment cached = cache.insert(blockIndex, page, scratch, pass);
        if (cached != null) {
          writer.writePage(block, offset, cached);
        } else {
          writer.writePageCopy(block, offset, scratch);
        }
      }
      normalPages++;
    }

    /**
     * The one place a whole page of guest RAM goes out as it is: with mapped-ram its fixed place in
     * the file; in precopy with multifd to a channel (read from RAM when the channel writes it); else
     * a PAGE record queued by reference (no copy, no allocation).
     */
    private void sendNormalPage(RamBlock block, int blockIndex, long offset) throws IOException {
      if (mapped != null) {
        mapped.page(blockIndex, offset / StreamHeader.TARGET_PAGE_SIZE);
      } else if (multifd != null && !postcopy) {
        multifd.queuePage(block, offset);
      } else {
        writer.writePage(block, offset);
      }
      normalPages++;
    }

    @Override
    public void complete(MigrationOutput out) throws IOException {
      sync();
      while (dirtyPages > 0 && (postcopy ? sendNextHostPage() : sendNext())) {
        // everything left, no limit
      }
      if (mapped != null) {
        mapped.finish();
      }
      writeEos();
      publish();
    }

    private void sync() {
      long added = ram.dirtyLog().harvestInto(bitmaps);
      if (pageMap != null) {
        // the harvest consumed the marks of pages first touched since the window was read: an
        // "untouched" from that window would now send them as zeros and clear their bits for good
        pageMap.invalidate();
      }
      dirtyPages += added;
      pass++;
      publish();
      listener.sync(pass, added);
    }

    @Override
    public long pendingEstimateBytes() {
      return bitmaps == null ? 0 : dirtyPages * StreamHeader.TARGET_PAGE_SIZE;
    }

    @Override
    public long pendingExactBytes() {
      if (bitmaps == null) {
        return 0;
      }
      sync();
      return dirtyPages * StreamHeader.TARGET_PAGE_SIZE;
    }

    /**
     * Queues a destination's page request (REQ_PAGES / REQ_PAGES_ID, on the return-path thread) after
     * QEMU's checks: a known block, start and length multiples of 4 KiB, inside the block. The
     * migration thread serves requests FIFO ahead of the background scan.
     */
    public void queuePageRequest(String blockName, long start, long length)
        throws dev.ferry.stream.MigrationStreamException {
      int bi = -1;
      for (int i = 0; i < blocks.size(); i++) {
        if (blocks.get(i).name().equals(blockName)) {
          bi = i;
        }
      }
      if (bi < 0) {
        throw new dev.ferry.stream.MigrationStreamException("page request for unknown RAM block '" + blockName + "'");
      }
      RamBlock b = blocks.get(bi);
      int tps = StreamHeader.TARGET_PAGE_SIZE;
      if (start < 0 || length <= 0 || start % tps != 0 || length % tps != 0) {
        throw new dev.ferry.stream.MigrationStreamException(
            String.format("page request [0x%x, +0x%x) of RAM block '%s' is not page aligned", start, length, blockName));
      }
      if (start >= b.usedLength() || length > b.usedLength() - start) {
        throw new dev.ferry.stream.MigrationStreamException(
            String.format(
                "page request [0x%x, +0x%x) is outside RAM block '%s' (length 0x%x)", start, length, blockName, b.usedLength()));
      }
      requests.add(new PageRequest(bi, start, length));
    }

    /** Whether page requests wait (they are served even when the rate limit is exhausted). */
    public boolean hasPageRequests() {
      return !requests.isEmpty();
    }

    /**
     * The postcopy switch, machine stopped: the last dirty sync, every huge page made wholly dirty or
     * wholly clean, and the discards — every page not sent since it was last dirtied, never-sent pages
     * included (QEMU 7.2 discards all set bits of its bitmap), at most 12 ranges per command. From now
     * on pages go out in whole host pages, requests first, without XBZRLE, and the next page names its
     * block again.
     */
    public List<dev.ferry.savevm.StreamCommand.RamDiscard> startPostcopy() {
      sync();
      postcopy = true;
      int tps = StreamHeader.TARGET_PAGE_SIZE;
      List<dev.ferry.savevm.StreamCommand.RamDiscard> out = new java.util.ArrayList<>();
      for (int i = 0; i < blocks.size(); i++) {
        RamBlock b = blocks.get(i);
        DirtyBitmap bm = bitmaps.get(i);
        long per = b.pageSize() / tps;
        if (per > 1) {
          for (long p = bm.nextSetBit(0); p >= 0; p = bm.nextSetBit(p)) {
            long host = p - p % per;
            for (long q = host; q < host + per; q++) {
              if (!bm.get(q)) {
                bm.set(q);
                dirtyPages++;
              }
            }
            p = host + per;
            if (p >= bm.pageCount()) {
              break;
            }
          }
        }
        List<dev.ferry.savevm.StreamCommand.Range> ranges = new java.util.ArrayList<>();
        long p = bm.nextSetBit(0);
        while (p >= 0) {
          long e = p + 1;
          while (e < bm.pageCount() && bm.get(e)) {
            e++;
          }
          ranges.add(new dev.ferry.savevm.StreamCommand.Range(p * tps, (e - p) * tps));
          if (ranges.size() == dev.ferry.savevm.StreamCommand.RamDiscard.MAX_RANGES) {
            out.add(new dev.ferry.savevm.StreamCommand.RamDiscard(b.name(), ranges));
            ranges.clear();
          }
          p = e < bm.pageCount() ? bm.nextSetBit(e) : -1;
        }
        if (!ranges.isEmpty()) {
          out.add(new dev.ferry.savevm.StreamCommand.RamDiscard(b.name(), ranges));
        }
      }
      writer.forgetLastBlock();
      return out;
    }

    @Override
    public List<String> blockNames() {
      return blocks.stream().map(RamBlock::name).toList();
    }

    private int blockIndexOf(String name) {
      for (int i = 0; i < blocks.size(); i++) {
        if (blocks.get(i).name().equals(name)) {
          return i;
        }
      }
      return -1;
    }

    @Override
    public long receivedBitmapBytes(String blockName) {
      int bi = blockIndexOf(blockName);
      if (bi < 0) {
        return -1;
      }
      long pages = blocks.get(bi).usedLength() / StreamHeader.TARGET_PAGE_SIZE;
      return (pages + 63) / 64 * 8;
    }

    /**
     * Dirty = not received (QEMU's ram_dirty_bitmap_reload): a page sent on the lost connection
     * that never arrived goes again, one that arrived never goes twice. Bits past the block's end
     * are ignored.
     */
    @Override
    public void receivedBitmap(String blockName, byte[] bitmap) throws dev.ferry.stream.MigrationStreamException {
      int bi = blockIndexOf(blockName);
      if (bi < 0 || bitmaps == null) {
        throw new dev.ferry.stream.MigrationStreamException("received bitmap of unknown RAM block '" + blockName + "'");
      }
      if (bitmap.length != receivedBitmapBytes(blockName)) {
        throw new dev.ferry.stream.MigrationStreamException(
            "received bitmap of RAM block '" + blockName + "' has " + bitmap.length + " bytes, expected "
                + receivedBitmapBytes(blockName));
      }
      DirtyBitmap bm = bitmaps.get(bi);
      long before = bm.cardinality();
      for (long p = 0; p < bm.pageCount(); p++) {
        boolean got = (bitmap[(int) (p >>> 3)] & (1 << (p & 7))) != 0;
        if (got) {
          bm.clear(p);
        } else {
          bm.set(p);
        }
      }
      dirtyPages += bm.cardinality() - before;
    }

    @Override
    public void resume(MigrationOutput out) {
      requests.clear();
      writer = new RamRecordWriter(out);
      mainOut = out;
      cursorBlock = 0;
      cursorPage = 0;
    }

    /**
     * A PART body in postcopy: queued requests first (FIFO; the scan then continues from the
     * requested page), then the background scan in whole host pages. The rate limit (the postcopy
     * bandwidth) stops only the background: while requests wait, sending goes on.
     */
    private boolean saveIteratePostcopy(BooleanSupplier rateLimited) throws IOException {
      long start = System.nanoTime();
      int sinceCheck = 0;
      while (dirtyPages > 0) {
        PageRequest rq = requests.poll();
        if (rq != null) {
          serve(rq);
        } else if (!sendNextHostPage()) {
          break;
        }
        if (++sinceCheck >= CHECK_EVERY_PAGES) {
          sinceCheck = 0;
          if (System.nanoTime() - start > MAX_ITERATE_NS || requests.isEmpty() && rateLimited.getAsBoolean()) {
            break;
          }
        }
      }
      writer.writeEos();
      publish();
      return dirtyPages == 0;
    }

    private void serve(PageRequest rq) throws IOException {
      RamBlock b = blocks.get(rq.block());
      DirtyBitmap bm = bitmaps.get(rq.block());
      long per = b.pageSize() / StreamHeader.TARGET_PAGE_SIZE;
      long first = rq.start() / StreamHeader.TARGET_PAGE_SIZE;
      long end = (rq.start() + rq.length()) / StreamHeader.TARGET_PAGE_SIZE;
      for (long host = first - first % per; host < end; host += per) {
        sendHostPage(rq.block(), host); // pages sent already are skipped: nothing goes twice
        cursorBlock = rq.block();
        cursorPage = Math.min(host + per, bm.pageCount());
      }
    }

    /** Sends the set pages of the host page starting at target page {@code host}, back to back. */
    private void sendHostPage(int blockIndex, long host) throws IOException {
      RamBlock b = blocks.get(blockIndex);
      DirtyBitmap bm = bitmaps.get(blockIndex);
      long per = b.pageSize() / StreamHeader.TARGET_PAGE_SIZE;
      for (long q = host; q < host + per; q++) {
        if (bm.get(q)) {
          bm.clear(q);
          dirtyPages--;
          sendPage(b, blockIndex, q);
        }
      }
    }

    /** The background scan in postcopy: the next dirty host page after the cursor; false when none. */
    private boolean sendNextHostPage() throws IOException {
      for (int tries = 0; tries <= blocks.size(); tries++) {
        DirtyBitmap bm = bitmaps.get(cursorBlock);
        long p = cursorPage < bm.pageCount() ? bm.nextSetBit(cursorPage) : -1;
        if (p >= 0) {
          long per = blocks.get(cursorBlock).pageSize() / StreamHeader.TARGET_PAGE_SIZE;
          long host = p - p % per;
          sendHostPage(cursorBlock, host);
          cursorPage = host + per;
          return true;
        }
        cursorBlock++;
        cursorPage = 0;
        if (cursorBlock == blocks.size()) {
          cursorBlock = 0;
        }
      }
      return false;
    }

    /** Stops the dirty log and frees what setup took; the RAM may then be saved again. */
    @Override
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      try {
        if (bitmaps != null) {
          ram.dirtyLog().stop();
          ram.dirtyLog().discardPending();
        }
      } finally {
        bitmaps = null;
        writer = null;
        mapped = null;
        if (pageMap != null) {
          pageMap.close();
          pageMap = null;
        }
        if (cache != null) {
          cache.close();
          cache = null;
        }
        activeSave.compareAndSet(this, null);
      }
    }
  }

  /**
   * The RAM state of one new load: a {@link RamLoader} with the {@link RamLoadOptions} in {@code
   * options} (or {@link RamLoadOptions#defaults()}). A load that believes RAM is fresh while guest
   * code ran on it reads zero pages after all.
   */
  @Override
  public Load openLoad(SaveOptions options) {
    RamLoadOptions o = options.get(RamLoadOptions.class, RamLoadOptions.defaults());
    if (o.blocksStartZeroed() && ram.guestStepped()) {
      o = o.withBlocksStartZeroed(false);
    }
    RamLoader loader = new RamLoader(RamBlockResolver.of(blocks), o);
    loader.multifd(options.get(MultifdSync.class, null)); // the multifd channels of this load, if any
    return new Load(loader);
  }

  /** One load's RAM state (QEMU's ram_load_setup .. ram_load_cleanup): its loader. */
  public static final class Load implements LiveLoad {
    private final RamLoader loader;
    private boolean closed;

    Load(RamLoader loader) {
      this.loader = loader;
    }

    @Override
    public void load(MigrationInput in, int version, SectionType type) throws IOException {
      if (version != VERSION) {
        throw new VersionMismatchException("section 'ram'", version, VERSION, VERSION);
      }
      loader.loadChunk(in);
    }

    /** The loader of this load (postcopy switches it to postcopy mode). */
    public RamLoader loader() {
      return loader;
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        loader.close();
      }
    }
  }
}
