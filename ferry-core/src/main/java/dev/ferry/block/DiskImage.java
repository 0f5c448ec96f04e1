package dev.ferry.block;

import dev.ferry.libc.LibC;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A raw disk image attached to a machine under a device name ({@code ferry run --drive
 * file=PATH,id=NAME}): the one API through which guest programs and the migration read and write
 * it, with a dirty bitmap of {@link BlockDescriptor#CHUNK_BYTES} granularity (QEMU's block
 * migration bitmap) while a migration logs it.
 *
 * <p><b>Ownership</b> (QEMU's inactivate/activate): an image is either active, and the guest may
 * write it, or inactive, owned by the other side of a migration (a destination before its load
 * completed; a source after its switch-over). A guest write to an inactive image is refused, so a
 * destination that shares the image with its source can never write before it took over.
 * The migration itself writes an inactive image through {@link #loadWrite}.
 *
 * <p>Dirty marks are set after the data reached the file, so a reader that clears a chunk's mark
 * before reading it either reads the new data or finds the mark set again (never loses a write).
 *
 * <p><b>Known zeros.</b> An image this object created (sparse, from {@code size=}) starts with every
 * chunk known to read as zeros; any write clears the chunks it touches. A migration's zero chunk
 * ({@link #loadWriteZeros}) on a chunk known zero writes nothing, so a sparse source stays sparse on
 * a fresh destination. (Ferry does not punch holes: a zero chunk over data is written as zeros.)
 */
public final class DiskImage implements AutoCloseable {
  private static final int CHUNK = BlockDescriptor.CHUNK_BYTES;

  private final String name;
  private final Path path;
  private final long sizeBytes;
  private final FileChannel channel;
  private final AtomicLongArray dirty;
  /** One bit per chunk that reads as zeros for sure (see the class comment). */
  private final AtomicLongArray knownZero;
  private volatile boolean logging;
  private volatile boolean active;

  /** One zero chunk, shared by the zero checks and zero writes of every image (never written). */
  static final MemorySegment ZERO_CHUNK = Arena.global().allocate(CHUNK, 4096);

  private DiskImage(String name, Path path, long sizeBytes, FileChannel channel, boolean active, boolean created) {
    this.name = name;
    this.path = path;
    this.sizeBytes = sizeBytes;
    this.channel = channel;
    this.active = active;
    int words = (int) ((chunkCount(sizeBytes) + 63) / 64);
    this.dirty = new AtomicLongArray(words);
    this.knownZero = new AtomicLongArray(words);
    if (created) {
      for (int i = 0; i < words; i++) {
        knownZero.set(i, -1L);
      }
    }
  }

  /**
   * Opens the raw image {@code path} as device {@code name}. A missing file is created sparse with
   * {@code sizeBytes}; an existing one keeps its size, which must equal {@code sizeBytes} when that
   * is positive ({@code sizeBytes <= 0}: take the file's size).
   *
   * @throws IllegalArgumentException for a bad name or size, a missing file without a size, or an
   *     existing file of another size (naming both)
   */
  public static DiskImage open(String name, Path path, long sizeBytes) throws IOException {
    checkName(name);
    Objects.requireNonNull(path, "path");
    if (sizeBytes > 0 && sizeBytes % BlockDescriptor.SECTOR_BYTES != 0) {
      throw new IllegalArgumentException(
          "drive '" + name + "': size " + sizeBytes + " is not a multiple of " + BlockDescriptor.SECTOR_BYTES);
    }
    boolean exists = java.nio.file.Files.exists(path);
    if (!exists && sizeBytes <= 0) {
      throw new IllegalArgumentException("drive '" + name + "': image " + path + " does not exist and no size= was given");
    }
    FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      long existing = ch.size();
      long size;
      boolean created = !exists || existing == 0 && sizeBytes > 0;
      if (created) {
        ch.write(ByteBuffer.allocate(1), sizeBytes - 1); // sparse: only the last byte is written
        size = sizeBytes;
      } else {
        if (sizeBytes > 0 && existing != sizeBytes) {
          throw new IllegalArgumentException(
              "drive '" + name + "': image " + path + " has " + existing + " bytes, size= says " + sizeBytes);
        }
        if (existing % BlockDescriptor.SECTOR_BYTES != 0) {
          throw new IllegalArgumentException(
              "drive '" + name + "': image " + path + " has " + existing + " bytes, not a multiple of 512");
        }
        size = existing;
      }
      return new DiskImage(name, path, size, ch, true, created);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  static void checkName(String name) {
    Objects.requireNonNull(name, "name");
    int n = name.getBytes(StandardCharsets.UTF_8).length;
    if (n == 0 || n > BlockDescriptor.MAX_NAME_BYTES) {
      throw new IllegalArgumentException("drive id must be 1.." + BlockDescriptor.MAX_NAME_BYTES + " bytes: '" + name + "'");
    }
  }

  /** Number of 1 MiB chunks of a disk of {@code sizeBytes} (the last may be partial). */
  public static long chunkCount(long sizeBytes) {
    return (sizeBytes + CHUNK - 1) / CHUNK;
  }

  /** The device name ({@code -drive id=}), which the block section carries. */
  public String name() {
    return name;
  }

  public Path path() {
    return path;
  }

  public long sizeBytes() {
    return sizeBytes;
  }

  public long chunkCount() {
    return chunkCount(sizeBytes);
  }

  /** Whether this side owns the image (may write it). */
  public boolean active() {
    return active;
  }

  /**
   * Hands the image over: flushes it and refuses guest writes from now on (QEMU's
   * bdrv_inactivate_all at a source's switch-over, or a destination waiting for its migration).
   */
  public void inactivate() throws IOException {
    active = false;
    flush();
  }

  /**
   * Takes the image over (a destination after its load, a source whose migration failed): the
   * file must still have this image's size (shared storage that another host resized is refused).
   *
   * @throws IOException naming the device and both sizes when the file changed size
   */
  public void activate() throws IOException {
    long now = channel.size();
    if (now != sizeBytes) {
      throw new IOException(
          "cannot activate drive '" + name + "': image " + path + " has " + now + " bytes now, expected " + sizeBytes);
    }
    active = true;
  }

  /** Reads {@code dst.remaining()} bytes at {@code offset} (inside the image). */
  public void read(long offset, ByteBuffer dst) throws IOException {
    checkRange(offset, dst.remaining());
    while (dst.hasRemaining()) {
      int n = channel.read(dst, offset);
      if (n < 0) {
        throw new IOException("drive '" + name + "': unexpected end of image " + path + " at " + offset);
      }
      offset += n;
    }
  }

  /**
   * A guest write of {@code src.remaining()} bytes at {@code offset}; marks the chunks it touches
   * dirty while a migration logs them.
   *
   * @throws IllegalStateException when the image is inactive (the other side owns it)
   */
  public void write(long offset, ByteBuffer src) throws IOException {
    if (!active) {
      throw new IllegalStateException("drive '" + name + "' is inactive: the other side of a migration owns image "
          + path + " (a destination writes only after it took over)");
    }
    long start = offset;
    long len = src.remaining();
    writeFully(offset, src);
    if (logging && len > 0) {
      markDirty(start, len);
    }
  }

  /**
   * A write by the migration (a destination's loader), allowed while inactive; not logged. One
   * positional write straight from {@code src} (direct buffers go to the kernel without a copy).
   */
  public void loadWrite(long offset, ByteBuffer src) throws IOException {
    writeFully(offset, src);
  }

  /**
   * The migration's zero chunk: {@code len} bytes (at most one chunk, from a chunk's start) become
   * zeros. Nothing is written when the chunk is known zero; otherwise zeros are written and the
   * chunk is known zero from then on.
   *
   * @return whether anything was written
   */
  public boolean loadWriteZeros(long offset, int len) throws IOException {
    checkRange(offset, len);
    if (offset % CHUNK != 0 || len > CHUNK) {
      throw new IllegalArgumentException("a zero chunk starts at a chunk and is at most one: [" + offset + ", +" + len + ")");
    }
    long c = offset / CHUNK;
    if (isKnownZero(c)) {
      return false;
    }
    writeFully(offset, ZERO_CHUNK.asSlice(0, len).asByteBuffer());
    if (offset + len == Math.min(sizeBytes, offset + CHUNK)) {
      knownZero.getAndUpdate((int) (c >>> 6), w -> w | 1L << c);
    }
    return true;
  }

  /** Whether chunk {@code c} reads as zeros for sure (see the class comment). */
  public boolean isKnownZero(long c) {
    return (knownZero.get((int) (c >>> 6)) & 1L << c) != 0;
  }

  private void writeFully(long offset, ByteBuffer src) throws IOException {
    checkRange(offset, src.remaining());
    if (src.hasRemaining()) {
      forgetZeros(offset, src.remaining());
    }
    while (src.hasRemaining()) {
      offset += channel.write(src, offset);
    }
  }

  /** Clears the known-zero bits of the chunks {@code [offset, offset + len)} touches (len > 0). */
  private void forgetZeros(long offset, long len) {
    for (long c = offset / CHUNK, last = (offset + len - 1) / CHUNK; c <= last; c++) {
      int w = (int) (c >>> 6);
      long bit = 1L << c;
      if ((knownZero.get(w) & bit) != 0) {
        knownZero.getAndUpdate(w, x -> x & ~bit);
      }
    }
  }

  /**
   * Maps the whole image read-only into {@code arena} for a migration's sends (no copy through a
   * buffer: the socket write reads the page cache), advising the kernel that it is read in order.
   * The mapping sees every later write (one page cache). The caller must not read past the image's
   * end, and nobody may shrink the file while it is mapped.
   */
  public MemorySegment mapReadOnly(Arena arena) throws IOException {
    MemorySegment m = channel.map(FileChannel.MapMode.READ_ONLY, 0, sizeBytes, arena);
    LibC.madvise(m.address(), m.byteSize(), LibC.MADV_SEQUENTIAL); // advice only: a failure changes nothing
    return m;
  }

  private void checkRange(long offset, long len) {
    if (offset < 0 || len < 0 || offset > sizeBytes - len) {
      throw new IndexOutOfBoundsException(
          "drive '" + name + "': [" + offset + ", +" + len + ") is outside its " + sizeBytes + " bytes");
    }
  }

  /** Makes written data durable (QEMU's flush at switch-over). */
  public void flush() throws IOException {
    channel.force(false);
  }

  // ------------------------------------------------------------------ dirty log

  /** Starts logging writes with every chunk clean. */
  public void startDirtyLog() {
    clearMarks();
    logging = true;
  }

  /** Stops logging and forgets the marks. */
  public void stopDirtyLog() {
    logging = false;
    clearMarks();
  }

  private void clearMarks() {
    for (int i = 0; i < dirty.length(); i++) {
      dirty.set(i, 0);
    }
  }

  public boolean logging() {
    return logging;
  }

  private void markDirty(long offset, long len) {
    long first = offset / CHUNK;
    long last = (offset + len - 1) / CHUNK;
    for (long c = first; c <= last; c++) {
      int w = (int) (c >>> 6);
      long bit = 1L << c;
      long old;
      do {
        old = dirty.get(w);
      } while ((old & bit) == 0 && !dirty.compareAndSet(w, old, old | bit));
    }
  }

  /**
   * Moves the marks set since the last harvest into {@code bits} (OR; one bit per chunk, length at
   * least {@code (chunkCount() + 63) / 64}) and clears them here.
   *
   * @return the number of chunks newly set in {@code bits}
   */
  public long harvestDirty(long[] bits) {
    long added = 0;
    for (int i = 0; i < dirty.length(); i++) {
      if (dirty.get(i) != 0) {
        long m = dirty.getAndSet(i, 0);
        added += Long.bitCount(m & ~bits[i]);
        bits[i] |= m;
      }
    }
    return added;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  @Override
  public String toString() {
    return "drive '" + name + "' (" + path + ", " + sizeBytes + " bytes)";
  }
}
