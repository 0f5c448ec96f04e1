package dev.ferry.block;

import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.LiveLoad;
import dev.ferry.savevm.LiveStateHandler;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.VersionMismatchException;
import dev.ferry.libc.LibC;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * A machine's disks as live state: QEMU 7.2's {@code block} section (version 1, instance 0),
 * registered before {@code ram} so its sections come first in every phase (migration/block.c).
 *
 * <p>Saving (only when the migration enables it, see {@link BlockSaveOptions}): setup starts every
 * disk's 1 MiB dirty log and sends EOS. Iterations first run the <b>bulk phase</b>: every chunk of
 * every disk in order, as DEVICE_BLOCK records of exactly 1 MiB (the tail chunk padded with zeros),
 * or ZERO_BLOCK with {@code zero-blocks}, with PROGRESS records as the percentage changes; while it
 * runs the handler reports work pending, so RAM sends nothing (the saver stops at the first handler
 * with work left, as QEMU's). Then the <b>dirty phase</b>: chunks the guest wrote since they were
 * sent, rate limited. Completion (guest stopped): flush, everything still dirty, PROGRESS 100, EOS.
 *
 * <p><b>Incremental</b> ({@code block-incremental}, {@code migrate inc=true}): Ferry's images are raw,
 * without QEMU's backing chains, so the base both sides share is the image's initial content, which
 * for an image Ferry creates ({@code size=}) is all zeros. A chunk that reads as all zeros on the
 * source is one the destination's base already holds: the bulk phase skips it without sending any
 * record. The destination's image must therefore hold zeros wherever the source's does (a fresh
 * image of the same size, or a copy of the common base); the dirty phase sends every dirty chunk,
 * zero or not, since the destination may hold its older content.
 *
 * <p><b>Bulk rate.</b> The source sends whole chunks straight from a read-only mapping of each
 * image (the socket write copies from the page cache; no read into a buffer), with the kernel told
 * the mapping is read in order and each chunk a few chunks ahead asked for (read-ahead); only the
 * padded tail chunk goes through a reused direct buffer. The destination receives each chunk into a
 * page-aligned buffer of a small pool and hands that same buffer to its writer thread, which writes
 * it with one positional write; nothing is forced per chunk. A flusher thread writes the images back
 * in the background after every {@value #FLUSH_EVERY_BYTES} bytes (never waited for), so the flush
 * once the END section has been written, in the downtime, has little left. Zero chunks (ZERO_BLOCK,
 * or a data chunk that is all zeros) on a chunk the destination knows is zero write nothing (see
 * {@link DiskImage#loadWriteZeros}).
 *
 * <p>Loading: each chunk goes to the disk of that name through {@link DiskImage#loadWrite}; an
 * unknown name or a chunk past the disk's end is refused, and the last chunk is written only up to
 * the disk's end (QEMU 7.2 fails there with EIO on a disk that is not a multiple of 1 MiB).
 */
public final class BlockLiveState implements LiveStateHandler {
  static final long MAX_ITERATE_NS = 50_000_000L;
  /** Dirty chunks a postcopy switch tolerates (sent with the guest stopped). */
  static final int POSTCOPY_MAX_DIRTY_CHUNKS = 16;
  private static final int CHUNK = BlockDescriptor.CHUNK_BYTES;
  /** How many chunks ahead of the one it sends the source asks the kernel to read (MADV_WILLNEED). */
  static final int READ_AHEAD_CHUNKS = 4;

  private final List<DiskImage> disks;
  private final Map<String, DiskImage> byName = new LinkedHashMap<>();
  private final AtomicReference<Save> activeSave = new AtomicReference<>();
  private volatile BlockStats lastStats = new BlockStats();

  public BlockLiveState(List<DiskImage> disks) {
    this.disks = List.copyOf(disks);
    for (DiskImage d : this.disks) {
      if (byName.putIfAbsent(d.name(), d) != null) {
        throw new IllegalArgumentException("two drives named '" + d.name() + "'");
      }
    }
  }

  /** A page-aligned direct buffer of one chunk (O_DIRECT-ready, and whole pages for the kernel). */
  static ByteBuffer chunkBuffer() {
    return ByteBuffer.allocateDirect(CHUNK + 4096).alignedSlice(4096).slice(0, CHUNK);
  }

  @Override
  public String idstr() {
    return BlockDescriptor.IDSTR;
  }

  @Override
  public int instanceId() {
    return 0;
  }

  @Override
  public int version() {
    return BlockDescriptor.VERSION;
  }

  /** Only when block migration is on for this save ({@link BlockSaveOptions#enabled()}) and there are disks. */
  @Override
  public boolean active(SaveOptions options) {
    return !disks.isEmpty() && options.get(BlockSaveOptions.class, BlockSaveOptions.OFF).enabled();
  }

  public List<DiskImage> disks() {
    return disks;
  }

  /** The counters of the running or last block migration. */
  public BlockStats stats() {
    return lastStats;
  }

  /** True while a migration sends the disks. */
  public boolean saving() {
    return activeSave.get() != null;
  }

  @Override
  public LiveSave openSave(SaveOptions options) {
    Save s = new Save(options.get(BlockSaveOptions.class, BlockSaveOptions.OFF));
    if (!activeSave.compareAndSet(null, s)) {
      throw new IllegalStateException("the disks are being migrated already");
    }
    lastStats = s.stats;
    return s;
  }

  /** One migration's block state (QEMU's BlkMigState). */
  private final class Save implements LiveSave {
    private final BlockSaveOptions options;
    private final BlockStats stats = new BlockStats();
    private final long[][] dirty = new long[disks.size()][];
    private final long[] dirtyCount = new long[disks.size()];
    /** For the padded tail chunk, and every chunk of a disk that could not be mapped. */
    private final ByteBuffer buffer = chunkBuffer();
    private final Arena arena = Arena.ofShared();
    /** Each disk's read-only mapping, or null (read through {@link #buffer} instead). */
    private final MemorySegment[] maps = new MemorySegment[disks.size()];
    private BlockRecordWriter writer;
    private int bulkDisk;
    private long bulkChunk;
    private long bulkDone;
    private long totalChunks;
    private int lastPercent = -1;
    private boolean closed;

    Save(BlockSaveOptions options) {
      this.options = options;
    }

    @Override
    public void setup(MigrationOutput out) throws IOException {
      writer = new BlockRecordWriter(out);
      long total = 0;
      for (int i = 0; i < disks.size(); i++) {
        DiskImage d = disks.get(i);
        dirty[i] = new long[(int) ((d.chunkCount() + 63) / 64)];
        if (d.sizeBytes() >= CHUNK) {
          try {
            maps[i] = d.mapReadOnly(arena);
          } catch (IOException | UnsupportedOperationException e) {
            maps[i] = null; // e.g. a file system without mmap: read through the buffer
          }
        }
        d.startDirtyLog();
        totalChunks += d.chunkCount();
        total += d.sizeBytes();
      }
      stats.totalBytes = total;
      stats.remainingBytes = total;
      stats.setupNs = System.nanoTime();
      writer.writeEos();
    }

    private boolean bulkCompleted() {
      return bulkDisk >= disks.size();
    }

    @Override
    public boolean iterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
      long start = System.nanoTime();
      while (!bulkCompleted()) {
        sendBulkChunk();
        if (rateLimited.getAsBoolean() || System.nanoTime() - start > MAX_ITERATE_NS) {
          break;
        }
      }
      if (bulkCompleted()) {
        stats.bulkCompleted = true;
        harvest();
        while (dirtyTotal() > 0 && !rateLimited.getAsBoolean() && System.nanoTime() - start <= MAX_ITERATE_NS) {
          sendNextDirty();
        }
      }
      updateRemaining();
      writer.writeEos();
      return bulkCompleted() && dirtyTotal() == 0;
    }

    private void sendBulkChunk() throws IOException {
      DiskImage d = disks.get(bulkDisk);
      long c = bulkChunk;
      int percent = (int) (bulkDone * 100 / Math.max(1, totalChunks));
      if (percent != lastPercent) {
        writer.writeProgress(percent);
        lastPercent = percent;
      }
      // clear the chunk's mark before reading it: a write from now on marks it again
      d.harvestDirty(dirty[bulkDisk]);
      recount(bulkDisk);
      sendChunk(bulkDisk, c, options.incremental());
      bulkDone++;
      if (++bulkChunk == d.chunkCount()) {
        bulkChunk = 0;
        bulkDisk++;
        if (bulkCompleted()) {
          stats.bulkEndNs = System.nanoTime();
          stats.bulkBytes = stats.transferredBytes();
          // write back what the guest wrote so far while it still runs: the flush at the
          // switch-over (in the downtime) then has only the last writes to do
          for (DiskImage x : disks) {
            x.flush();
          }
        }
      }
    }

    /** Reads chunk {@code c} of disk {@code di} and sends it (or skips it, see the class comment). */
    private void sendChunk(int di, long c, boolean skipZero) throws IOException {
      DiskImage d = disks.get(di);
      long off = c * CHUNK;
      int len = (int) Math.min(CHUNK, d.sizeBytes() - off);
      MemorySegment map = maps[di];
      ByteBuffer data;
      if (map != null && len == CHUNK) {
        long ahead = off + (long) READ_AHEAD_CHUNKS * CHUNK;
        if (ahead < map.byteSize()) {
          LibC.madvise(map.address() + ahead, Math.min(CHUNK, map.byteSize() - ahead), LibC.MADV_WILLNEED);
        }
        data = map.asSlice(off, CHUNK).asByteBuffer();
      } else {
        buffer.clear().limit(len);
        d.read(off, buffer);
        data = buffer;
      }
      boolean zero = isZero(data, len);
      if (zero && skipZero) {
        stats.skippedChunks.incrementAndGet();
        return;
      }
      if (zero && options.zeroBlocks()) {
        writer.writeZeroChunk(d.name(), off);
        stats.zeroChunks.incrementAndGet();
      } else {
        if (data == buffer) {
          // pad the tail chunk: QEMU's loader reads a whole 1 MiB
          MemorySegment.ofBuffer(buffer.clear()).asSlice(len).fill((byte) 0);
          buffer.clear();
        } else {
          data.clear();
        }
        writer.writeChunk(d.name(), off, data);
        writer.flush(); // the chunk went by reference: out before the buffer is reused (or unmapped)
        stats.transferredBytes.addAndGet(CHUNK);
      }
      stats.chunks.incrementAndGet();
    }

    private void harvest() {
      for (int i = 0; i < disks.size(); i++) {
        disks.get(i).harvestDirty(dirty[i]);
        recount(i);
      }
    }

    /**
     * Drops marks of chunks the bulk phase has not reached (it reads them later, after the write)
     * and counts the rest.
     */
    private void recount(int i) {
      long[] bm = dirty[i];
      long from = i < bulkDisk ? Long.MAX_VALUE : i == bulkDisk ? bulkChunk : 0;
      long n = 0;
      for (int w = 0; w < bm.length; w++) {
        long firstChunk = (long) w * 64;
        if (firstChunk >= from) {
          bm[w] = 0;
        } else if (firstChunk + 64 > from) {
          bm[w] &= (1L << (from - firstChunk)) - 1;
        }
        n += Long.bitCount(bm[w]);
      }
      dirtyCount[i] = n;
    }

    private long dirtyTotal() {
      long n = 0;
      for (long c : dirtyCount) {
        n += c;
      }
      return n;
    }

    /** Sends the first dirty chunk; the bitmaps hold only chunks the bulk phase has passed. */
    private void sendNextDirty() throws IOException {
      for (int i = 0; i < disks.size(); i++) {
        long[] bm = dirty[i];
        for (int w = 0; w < bm.length; w++) {
          if (bm[w] != 0) {
            int b = Long.numberOfTrailingZeros(bm[w]);
            bm[w] &= ~(1L << b);
            dirtyCount[i]--;
            sendChunk(i, (long) w * 64 + b, false);
            return;
          }
        }
      }
    }

    private void updateRemaining() {
      long rem = dirtyTotal() * CHUNK;
      for (int i = bulkDisk; i < disks.size(); i++) {
        long from = i == bulkDisk ? bulkChunk * CHUNK : 0;
        rem += Math.max(0, disks.get(i).sizeBytes() - from);
      }
      stats.remainingBytes = rem;
    }

    @Override
    public void complete(MigrationOutput out) throws IOException {
      for (DiskImage d : disks) {
        d.flush();
      }
      while (!bulkCompleted()) {
        sendBulkChunk();
      }
      stats.bulkCompleted = true;
      harvest();
      while (dirtyTotal() > 0) {
        sendNextDirty();
      }
      updateRemaining();
      writer.writeProgress(100);
      writer.writeEos();
    }

    /**
     * Block migration is precopy-only: the postcopy switch waits until the bulk phase is done and
     * at most {@value #POSTCOPY_MAX_DIRTY_CHUNKS} dirty chunks are left (they go in the END section
     * at the switch, guest stopped).
     */
    @Override
    public boolean readyForPostcopy() {
      return bulkCompleted() && dirtyTotal() <= POSTCOPY_MAX_DIRTY_CHUNKS;
    }

    @Override
    public long pendingEstimateBytes() {
      if (writer == null) {
        return 0;
      }
      updateRemaining();
      // during the bulk phase at least one chunk is pending (QEMU's block_save_pending)
      return bulkCompleted() ? stats.remainingBytes : Math.max(CHUNK, stats.remainingBytes);
    }

    @Override
    public long pendingExactBytes() {
      if (writer == null) {
        return 0;
      }
      if (bulkCompleted()) {
        harvest();
      }
      return pendingEstimateBytes();
    }

    @Override
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      for (DiskImage d : disks) {
        d.stopDirtyLog();
      }
      java.util.Arrays.fill(maps, null);
      activeSave.compareAndSet(this, null);
      arena.close(); // unmaps (on the migration thread, after its last flush: nothing reads the mappings)
    }
  }

  /** Whether the first {@code len} bytes (at most a chunk) of {@code b} from index 0 are zeros (vectorized compare). */
  static boolean isZero(ByteBuffer b, int len) {
    return MemorySegment.mismatch(MemorySegment.ofBuffer(b.duplicate().clear()), 0, len, DiskImage.ZERO_CHUNK, 0, len) < 0;
  }

  // ------------------------------------------------------------------ load

  /** The disk state of one load: its chunk buffer and its writer thread. */
  @Override
  public LiveLoad openLoad(SaveOptions options) {
    return new Load();
  }

  /** One load's block state (QEMU's block_load with its buffers), closed when the load ends. */
  private final class Load implements LiveLoad {
    private final LoadWriter writer = new LoadWriter();
    /** Disks this load wrote (flushed once at its END). */
    private final java.util.Set<DiskImage> loaded = new java.util.LinkedHashSet<>();
    private boolean closed;

    @Override
    public void load(MigrationInput in, int version, SectionType type) throws IOException {
      if (version != BlockDescriptor.VERSION) {
        throw new VersionMismatchException("section 'block'", version, BlockDescriptor.VERSION, BlockDescriptor.VERSION);
      }
      writer.check();
      BlockReader.readBody(in, (device, offset, data, at) -> loadChunk(this, device, offset, data, at), writer::take);
      if (type == SectionType.END) {
        writer.drain(); // every chunk is on the disk before the load goes on
        for (DiskImage d : loaded) {
          d.flush(); // once, at the end (no force per chunk)
        }
        loaded.clear();
      }
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        loaded.clear();
        writer.close();
      }
    }
  }

  private void loadChunk(Load load, String device, long offset, ByteBuffer data, long at) throws IOException {
    DiskImage d = byName.get(device);
    String bad = null;
    if (d == null) {
      bad = "Error unknown block device '" + device + "'";
    } else if (offset >= d.sizeBytes()) {
      bad = String.format("block chunk at 0x%x is past the end of drive '%s' (%d bytes)", offset, device, d.sizeBytes());
    }
    if (bad != null) {
      if (data != null) {
        load.writer.giveBack(data);
      }
      throw new MigrationStreamException(bad, at);
    }
    int len = (int) Math.min(CHUNK, d.sizeBytes() - offset); // clamp the tail chunk to the disk's end
    load.loaded.add(d);
    load.writer.write(d, offset, data, len);
  }

  /**
   * Writes the received chunks on a thread of its own, so receiving the next chunk overlaps writing
   * this one (QEMU's loader writes synchronously; a file write then stalls the socket). The reader
   * receives each chunk into a buffer {@link #take() taken} from a pool of at most {@value
   * #LOAD_DEPTH} and hands that buffer over: the write goes from it, no copy. Chunks are written in
   * stream order (one thread); the first write error fails the next section, and an END section waits
   * until all are written.
   */
  private static final int LOAD_DEPTH = 8;
  /** Bytes written between background write-backs of the destination's images. */
  static final long FLUSH_EVERY_BYTES = 64L << 20;

  private static final class LoadWriter {
    private final java.util.concurrent.ExecutorService thread =
        java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("block-load-writer").daemon(true).unstarted(r));
    private final java.util.concurrent.Semaphore permits = new java.util.concurrent.Semaphore(LOAD_DEPTH);
    private final java.util.concurrent.ConcurrentLinkedQueue<ByteBuffer> pool = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final AtomicReference<IOException> failure = new AtomicReference<>();
    private final java.util.concurrent.ExecutorService flusher =
        java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("block-load-flush").daemon(true).unstarted(r));
    private final java.util.concurrent.atomic.AtomicBoolean flushing = new java.util.concurrent.atomic.AtomicBoolean();
    /** Disks written since the last background flush (writer thread only). */
    private final java.util.Set<DiskImage> unflushed = new java.util.HashSet<>();
    private long unflushedBytes;

    /** On the writer thread: starts a background flush once enough was written (skipped while one runs). */
    private void written(DiskImage d, int len) {
      unflushed.add(d);
      unflushedBytes += len;
      if (unflushedBytes >= FLUSH_EVERY_BYTES && flushing.compareAndSet(false, true)) {
        List<DiskImage> batch = List.copyOf(unflushed);
        unflushed.clear();
        unflushedBytes = 0;
        try {
          flusher.execute(() -> {
            try {
              for (DiskImage x : batch) {
                x.flush();
              }
            } catch (IOException | RuntimeException e) {
              failure.compareAndSet(null, new IOException("flushing the block load failed: " + e.getMessage(), e));
            } finally {
              flushing.set(false);
            }
          });
        } catch (java.util.concurrent.RejectedExecutionException e) {
          flushing.set(false);
        }
      }
    }

    /** A free chunk buffer (waits while {@value #LOAD_DEPTH} chunks are queued); hand it to {@link #write} or {@link #giveBack}. */
    ByteBuffer take() throws IOException {
      check();
      acquire("receiving a block chunk");
      ByteBuffer b = pool.poll();
      return b != null ? b : chunkBuffer();
    }

    void giveBack(ByteBuffer b) {
      pool.add(b);
      permits.release();
    }

    private void acquire(String what) throws IOException {
      try {
        permits.acquire();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while " + what);
      }
    }

    /**
     * Queues the write of {@code len} bytes of {@code data} (a buffer from {@link #take()}, now owned
     * by the writer) at {@code offset}, or of a zero chunk when {@code data} is null.
     */
    void write(DiskImage d, long offset, ByteBuffer data, int len) throws IOException {
      if (data == null) {
        check();
        acquire("writing drive '" + d.name() + "'");
      }
      try {
        thread.execute(
            () -> {
              try {
                if (failure.get() == null) {
                  if (data == null || isZero(data, len)) {
                    if (d.loadWriteZeros(offset, len)) {
                      written(d, len);
                    }
                  } else {
                    d.loadWrite(offset, data.limit(len));
                    written(d, len);
                  }
                }
              } catch (IOException | RuntimeException e) {
                failure.compareAndSet(null, e instanceof IOException io ? io
                    : new IOException("writing drive '" + d.name() + "' failed: " + e.getMessage(), e));
              } finally {
                if (data != null) {
                  pool.add(data);
                }
                permits.release();
              }
            });
      } catch (java.util.concurrent.RejectedExecutionException e) {
        if (data != null) {
          pool.add(data);
        }
        permits.release();
        throw new IOException("the block load has ended", e);
      }
    }

    void check() throws IOException {
      IOException e = failure.get();
      if (e != null) {
        throw e;
      }
    }

    void drain() throws IOException {
      try {
        permits.acquire(LOAD_DEPTH);
        permits.release(LOAD_DEPTH);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while waiting for the disk writes");
      }
      check();
    }

    /** Stops the thread; writes still queued are done first (a bounded wait), none after. */
    void close() {
      thread.shutdown();
      try {
        thread.awaitTermination(60, java.util.concurrent.TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      flusher.shutdown(); // a running write-back finishes on its own
    }
  }
}
