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
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
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
 * <p>Loading: each chunk goes to the disk of that name through {@link DiskImage#loadWrite}; an
 * unknown name or a chunk past the disk's end is refused, and the last chunk is written only up to
 * the disk's end (QEMU 7.2 fails there with EIO on a disk that is not a multiple of 1 MiB).
 */
public final class BlockLiveState implements LiveStateHandler {
  static final long MAX_ITERATE_NS = 50_000_000L;
  /** Dirty chunks a postcopy switch tolerates (sent with the guest stopped). */
  static final int POSTCOPY_MAX_DIRTY_CHUNKS = 16;
  private static final int CHUNK = BlockDescriptor.CHUNK_BYTES;

  private final List<DiskImage> disks;
  private final AtomicReference<Save> activeSave = new AtomicReference<>();
  private volatile BlockStats lastStats = new BlockStats();

  public BlockLiveState(List<DiskImage> disks) {
    this.disks = List.copyOf(disks);
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
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
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
      buffer.clear().limit(len);
      d.read(off, buffer);
      boolean zero = isZero(buffer, len);
      if (zero && skipZero) {
        stats.skippedChunks.incrementAndGet();
        return;
      }
      if (zero && options.zeroBlocks()) {
        writer.writeZeroChunk(d.name(), off);
        stats.zeroChunks.incrementAndGet();
      } else {
        buffer.limit(CHUNK);
        while (buffer.position() < CHUNK) {
          buffer.put((byte) 0); // pad the tail chunk: QEMU's loader reads a whole 1 MiB
        }
        buffer.flip();
        writer.writeChunk(d.name(), off, buffer);
        writer.flush(); // the chunk went by reference: out before the buffer is reused
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
      activeSave.compareAndSet(this, null);
    }
  }

  static boolean isZero(ByteBuffer b, int len) {
    int i = 0;
    for (; i + 8 <= len; i += 8) {
      if (b.getLong(i) != 0) {
        return false;
      }
    }
    for (; i < len; i++) {
      if (b.get(i) != 0) {
        return false;
      }
    }
    return true;
  }

  // ------------------------------------------------------------------ load

  /** The disk state of one load: its chunk buffer and its writer thread. */
  @Override
  public LiveLoad openLoad(SaveOptions options) {
    return new Load();
  }

  /** One load's block state (QEMU's block_load with its buffers), closed when the load ends. */
  private final class Load implements LiveLoad {
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
    private final LoadWriter writer = new LoadWriter();
    private boolean closed;

    @Override
    public void load(MigrationInput in, int version, SectionType type) throws IOException {
      if (version != BlockDescriptor.VERSION) {
        throw new VersionMismatchException("section 'block'", version, BlockDescriptor.VERSION, BlockDescriptor.VERSION);
      }
      writer.check();
      BlockReader.readBody(in, (device, offset, data, at) -> loadChunk(writer, device, offset, data, at), buffer);
      if (type == SectionType.END) {
        writer.drain(); // every chunk is on the disk before the load goes on
      }
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        writer.close();
      }
    }
  }

  private void loadChunk(LoadWriter loadWriter, String device, long offset, ByteBuffer data, long at) throws IOException {
    DiskImage d = null;
    for (DiskImage x : disks) {
      if (x.name().equals(device)) {
        d = x;
      }
    }
    if (d == null) {
      throw new MigrationStreamException("Error unknown block device '" + device + "'", at);
    }
    if (offset >= d.sizeBytes()) {
      throw new MigrationStreamException(
          String.format("block chunk at 0x%x is past the end of drive '%s' (%d bytes)", offset, device, d.sizeBytes()), at);
    }
    int len = (int) Math.min(CHUNK, d.sizeBytes() - offset); // clamp the tail chunk to the disk's end
    loadWriter.write(d, offset, data, len);
  }

  /**
   * Writes the received chunks on a thread of its own, so receiving the next chunk overlaps writing
   * this one (QEMU's loader writes synchronously; a file write then stalls the socket). Chunks are
   * written in stream order (one thread), at most {@value #LOAD_DEPTH} queued; the first write error
   * fails the next section, and an END section waits until all are written.
   */
  private static final int LOAD_DEPTH = 8;

  private static final class LoadWriter {
    private final java.util.concurrent.ExecutorService thread =
        java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("block-load-writer").daemon(true).unstarted(r));
    private final java.util.concurrent.Semaphore permits = new java.util.concurrent.Semaphore(LOAD_DEPTH);
    private final java.util.concurrent.ConcurrentLinkedQueue<ByteBuffer> pool = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final AtomicReference<IOException> failure = new AtomicReference<>();

    void write(DiskImage d, long offset, ByteBuffer data, int len) throws IOException {
      check();
      try {
        permits.acquire();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while writing drive '" + d.name() + "'");
      }
      ByteBuffer buf = null;
      if (data != null) {
        buf = pool.poll();
        if (buf == null) {
          buf = ByteBuffer.allocateDirect(CHUNK);
        }
        buf.clear().put(data.limit(len)).flip();
      }
      ByteBuffer b = buf;
      try {
        thread.execute(
            () -> {
              try {
                if (failure.get() == null) {
                  if (b == null) {
                    writeZeros(d, offset, len);
                  } else {
                    d.loadWrite(offset, b);
                  }
                }
              } catch (IOException | RuntimeException e) {
                failure.compareAndSet(null, e instanceof IOException io ? io
                    : new IOException("writing drive '" + d.name() + "' failed: " + e.getMessage(), e));
              } finally {
                if (b != null) {
                  pool.add(b);
                }
                permits.release();
              }
            });
      } catch (java.util.concurrent.RejectedExecutionException e) {
        permits.release();
        throw new IOException("the block load has ended", e);
      }
    }

    private static void writeZeros(DiskImage d, long offset, int len) throws IOException {
      ByteBuffer z = ByteBuffer.allocate(Math.min(len, 64 << 10));
      for (long o = offset; o < offset + len; ) {
        int n = (int) Math.min(z.capacity(), offset + len - o);
        z.clear().limit(n);
        d.loadWrite(o, z);
        o += n;
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
    }
  }
}
