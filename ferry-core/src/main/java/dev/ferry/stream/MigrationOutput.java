package dev.ferry.stream;

import java.io.Closeable;
import java.io.Flushable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The writing side of a migration stream (QEMU's QEMUFile in write mode).
 *
 * <p>Small values go into a 32 KiB staging buffer. Pages ({@link #writePage}) are not copied: they
 * are queued by reference, between pieces of the staging buffer, and written with one gathering
 * write when {@value #MAX_IOV} pieces are queued, the staging buffer is full, or on {@link #flush()}.
 * As in QEMU, a queued page may still change before it is written; callers rely on dirty tracking to
 * send it again.
 *
 * <p>The per-page path allocates nothing: every slot of the gathering array owns two reusable views,
 * one of the staging buffer and one of a 1 GiB window of the region a page lives in ({@link
 * #writePage(MemorySegment, long, int)}); queuing a piece only moves a view's position and limit.
 * A slot's window view is made again only when the slot's next page lies in another window (in a
 * sequential pass: once per slot and GiB).
 *
 * <p>Errors are sticky: the first failure is recorded, and every later call throws it again.
 * {@link #position()} counts bytes accepted so far (the QEMU "bytes transferred" counter), which the
 * migration's rate limiter reads.
 *
 * <p>Not thread-safe: one writer at a time.
 */
public final class MigrationOutput implements Closeable, Flushable {
  public static final int BUFFER_SIZE = 32 * 1024;
  /** Pieces queued before a gathering write (QEMU: MAX_IOV_SIZE = 64). */
  static final int MAX_IOV = 512;

  private final WritableByteChannel channel;
  private final GatheringByteChannel gathering;
  private final ByteBuffer stage;
  /** Start of the staging bytes not yet referenced by {@link #iov}. */
  private int stageMark;
  /** The staging buffer as a segment (indexes match {@code stage}'s), for copies without views. */
  private final MemorySegment stageSegment;
  private final ByteBuffer[] iov = new ByteBuffer[MAX_IOV + 1];
  /** Per slot: a view of the staging buffer, made on first use. */
  private final ByteBuffer[] stageViews = new ByteBuffer[MAX_IOV + 1];
  /** Per slot: a view of one window of a page region, and which region and window it shows. */
  private final ByteBuffer[] windowViews = new ByteBuffer[MAX_IOV + 1];
  private final MemorySegment[] windowRegions = new MemorySegment[MAX_IOV + 1];
  private final long[] windowBases = new long[MAX_IOV + 1];
  private int iovCount;
  /** Written by the writer only; volatile so that other threads read {@link #flushedPosition()}. */
  private volatile long flushedBytes;
  private long queuedExternal;
  private IOException error;
  /** The file under a {@link SeekableChannel}, or null. */
  private final FileChannel file;
  /** File offset of the stream's first byte (a seekable channel only). */
  private long fileBase;
  /** Bytes the stream's position moved over with {@link #seek} (holes in the file). */
  private long skippedBytes;
  /** Bytes written with {@link #writeAt} (volatile: {@link #flushedPosition()} counts them). */
  private volatile long positionalBytes;

  public MigrationOutput(WritableByteChannel channel) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.gathering = channel instanceof GatheringByteChannel g ? g : null;
    this.stage = ByteBuffer.allocateDirect(BUFFER_SIZE).order(ByteOrder.BIG_ENDIAN);
    this.stageSegment = MemorySegment.ofBuffer(stage);
    this.file = channel instanceof SeekableChannel s ? s.fileChannel() : null;
    if (file != null) {
      try {
        fileBase = file.position();
      } catch (IOException e) {
        fail(new MigrationStreamException("cannot read the file position: " + e.getMessage(), 0, e));
      }
    }
  }

  /**
   * Bytes accepted so far (written or queued, positional writes included): what the migration
   * counts as transferred and rate-limits.
   */
  public long position() {
    return flushedBytes + queuedExternal + stage.position() + positionalBytes;
  }

  /** True when the channel is a file: {@link #streamOffset}, {@link #seek} and {@link #writeAt} work. */
  public boolean seekable() {
    return file != null;
  }

  /** The file offset of the next byte of the stream itself (seekable channels only). */
  public long streamOffset() {
    requireSeekable();
    return fileBase + flushedBytes + queuedExternal + stage.position() + skippedBytes;
  }

  private void requireSeekable() {
    if (file == null) {
      throw new IllegalStateException("the migration channel is not a file: no positional I/O");
    }
  }

  /**
   * Moves the stream forward to file offset {@code offset} (QEMU's {@code qemu_set_offset}): what
   * is staged is written first, the bytes in between are left to {@link #writeAt} (a hole until
   * then).
   */
  public void seek(long offset) throws IOException {
    requireSeekable();
    flush();
    long now = streamOffset();
    if (offset < now) {
      throw new IllegalArgumentException("seek backwards from 0x" + Long.toHexString(now) + " to 0x" + Long.toHexString(offset));
    }
    try {
      file.position(offset);
    } catch (IOException e) {
      throw fail(new MigrationStreamException("seek to file offset 0x" + Long.toHexString(offset) + " failed: " + e.getMessage(), position(), e));
    }
    skippedBytes += offset - now;
  }

  /**
   * Writes {@code src}'s remaining bytes at file offset {@code offset}, now, without touching the
   * stream's position (QEMU's {@code qemu_put_buffer_at}); counted in {@link #position()}.
   */
  public void writeAt(ByteBuffer src, long offset) throws IOException {
    requireSeekable();
    checkError();
    long at = offset;
    try {
      while (src.hasRemaining()) {
        at += file.write(src, at);
      }
    } catch (IOException e) {
      throw fail(new MigrationStreamException("write at file offset 0x" + Long.toHexString(at) + " failed: " + e.getMessage(), position(), e));
    }
    positionalBytes += at - offset;
  }

  /**
   * Bytes written to the channel as of the last flush: what a thread other than the writer may read
   * (the monitor's transferred bytes), at most one flush (about a megabyte) behind {@link
   * #position()}.
   */
  public long flushedPosition() {
    return flushedBytes + positionalBytes;
  }

  public IOException error() {
    return error;
  }

  /** Records {@code e} as the stream's error unless one exists; returns the recorded one. */
  public IOException fail(IOException e) {
    if (error == null) {
      error = e;
    }
    return error;
  }

  private void checkError() throws IOException {
    if (error != null) {
      throw error;
    }
  }

  private void ensure(int n) throws IOException {
    checkError();
    if (stage.remaining() < n) {
      flush();
    }
  }

  public MigrationOutput writeU8(int v) throws IOException {
    ensure(1);
    stage.put((byte) v);
    return this;
  }

  public MigrationOutput writeBe16(int v) throws IOException {
    ensure(2);
    stage.putShort((short) v);
    return this;
  }

  public MigrationOutput writeBe32(int v) throws IOException {
    ensure(4);
    stage.putInt(v);
    return this;
  }

  /** Writes the low 32 bits of {@code v}. */
  public MigrationOutput writeBe32(long v) throws IOException {
    return writeBe32((int) v);
  }

  public MigrationOutput writeBe64(long v) throws IOException {
    ensure(8);
    stage.putLong(v);
    return this;
  }

  public MigrationOutput writeDouble(double v) throws IOException {
    return writeBe64(Double.doubleToRawLongBits(v));
  }

  /** A QEMU counted string: u8 length then the bytes; chars must be 0..255 and at most 255 of them. */
  public MigrationOutput writeCountedString(String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
    if (b.length > 255) {
      throw new IllegalArgumentException("counted string longer than 255 bytes: " + s);
    }
    writeU8(b.length);
    return writeBytes(b, 0, b.length);
  }

  public MigrationOutput writeBytes(byte[] b) throws IOException {
    return writeBytes(b, 0, b.length);
  }

  /** Copies bytes into the stream. */
  public MigrationOutput writeBytes(byte[] b, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, b.length);
    return writeBytes(ByteBuffer.wrap(b, off, len));
  }

  /** Copies {@code src.remaining()} bytes into the stream, consuming {@code src}. */
  public MigrationOutput writeBytes(ByteBuffer src) throws IOException {
    checkError();
    while (src.hasRemaining()) {
      if (!stage.hasRemaining()) {
        flush();
      }
      int n = Math.min(stage.remaining(), src.remaining());
      stage.put(stage.position(), src, src.position(), n);
      stage.position(stage.position() + n);
      src.position(src.position() + n);
    }
    return this;
  }

  /** Copies {@code length} bytes of {@code src} from {@code offset} into the stream (no view made). */
  public MigrationOutput writeBytes(MemorySegment src, long offset, long length) throws IOException {
    checkError();
    Objects.checkFromIndexSize(offset, length, src.byteSize());
    while (length > 0) {
      if (!stage.hasRemaining()) {
        flush();
      }
      int n = (int) Math.min(stage.remaining(), length);
      MemorySegment.copy(src, offset, stageSegment, stage.position(), n);
      stage.position(stage.position() + n);
      offset += n;
      length -= n;
    }
    return this;
  }

  /** Writes {@code n} zero bytes. */
  public MigrationOutput writeZeros(int n) throws IOException {
    checkError();
    while (n > 0) {
      if (!stage.hasRemaining()) {
        flush();
      }
      int k = Math.min(n, stage.remaining());
      for (int i = 0; i < k; i++) {
        stage.put((byte) 0);
      }
      n -= k;
    }
    return this;
  }

  /**
   * Queues the bytes of {@code page} without copying them (QEMU's async page write). The segment
   * must stay valid until the next {@link #flush()}.
   */
  public MigrationOutput writePage(MemorySegment page) throws IOException {
    return writePage(page, 0, (int) page.byteSize());
  }

  /** Largest window of a region one reusable view shows (a ByteBuffer holds below 2 GiB). */
  static final long WINDOW_BYTES = 1L << 30;

  /**
   * Queues {@code length} bytes of {@code region} from {@code offset} by reference (a guest page of
   * a RAM block), without allocating: see the class comment. The bytes are read when the output
   * flushes; {@code region} must stay valid until then. The piece must not cross a 1 GiB boundary of
   * the region (a page never does).
   */
  public MigrationOutput writePage(MemorySegment region, long offset, int length) throws IOException {
    checkError();
    Objects.checkFromIndexSize(offset, length, region.byteSize());
    long base = offset & -WINDOW_BYTES;
    if (offset + length - base > WINDOW_BYTES) {
      throw new IllegalArgumentException("page [0x" + Long.toHexString(offset) + ", +" + length + ") crosses a 1 GiB window");
    }
    if (gathering == null) {
      return writeBytes(region, offset, length);
    }
    if (iovCount >= MAX_IOV - 1) {
      flush();
    }
    addStageSlice();
    int slot = iovCount++;
    ByteBuffer view = windowViews[slot];
    if (view == null || windowRegions[slot] != region || windowBases[slot] != base) {
      view = region.asSlice(base, Math.min(WINDOW_BYTES, region.byteSize() - base)).asByteBuffer();
      windowViews[slot] = view;
      windowRegions[slot] = region;
      windowBases[slot] = base;
    }
    int at = (int) (offset - base);
    view.limit(at + length).position(at);
    iov[slot] = view;
    queuedExternal += length;
    return this;
  }

  /** Queues {@code page}'s remaining bytes by reference; see {@link #writePage(MemorySegment)}. */
  public MigrationOutput writePage(ByteBuffer page) throws IOException {
    checkError();
    if (gathering == null) {
      return writeBytes(page.duplicate());
    }
    if (iovCount >= MAX_IOV - 1) {
      flush();
    }
    addStageSlice();
    iov[iovCount++] = page.duplicate();
    queuedExternal += page.remaining();
    return this;
  }

  private void addStageSlice() {
    int pos = stage.position();
    if (pos > stageMark) {
      int slot = iovCount++;
      ByteBuffer view = stageViews[slot];
      if (view == null) {
        view = stage.duplicate();
        stageViews[slot] = view;
      }
      view.limit(pos).position(stageMark);
      iov[slot] = view;
      stageMark = pos;
    }
  }

  /** Writes everything staged and queued to the channel. */
  @Override
  public void flush() throws IOException {
    checkError();
    long staged = stage.position();
    try {
      if (iovCount == 0) {
        ByteBuffer b = stage.flip();
        while (b.hasRemaining()) {
          channel.write(b);
        }
      } else {
        addStageSlice();
        int first = 0;
        while (first < iovCount) {
          gathering.write(iov, first, iovCount - first);
          while (first < iovCount && !iov[first].hasRemaining()) {
            iov[first++] = null;
          }
        }
      }
    } catch (IOException e) {
      throw fail(new MigrationStreamException("write failed: " + e.getMessage(), position(), e));
    }
    flushedBytes += staged + queuedExternal;
    queuedExternal = 0;
    iovCount = 0;
    stageMark = 0;
    stage.clear();
  }

  /** Flushes, then closes the channel; a close after an error only closes. */
  @Override
  public void close() throws IOException {
    try {
      if (error == null) {
        flush();
      }
    } finally {
      channel.close();
    }
  }
}
