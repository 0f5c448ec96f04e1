package dev.ferry.stream;

import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ScatteringByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The reading side of a migration stream (QEMU's QEMUFile in read mode): big-endian primitives,
 * counted strings, bulk reads straight into guest RAM, a bounded peek for subsection detection, the
 * byte position, and a sticky first error.
 *
 * <p>Unlike QEMU, reads past the end do not return zeros: they throw {@link
 * TruncatedStreamException} with the offset, and every later read throws the same first error
 * again. Reads block until the channel has delivered enough bytes; the channel may return any
 * number of bytes per read (one at a time is fine).
 *
 * <p>Not thread-safe: one reader at a time.
 */
public final class MigrationInput implements Closeable {
  /** Size of the read buffer, which is also the most a {@link #peekU8} can look ahead. */
  public static final int BUFFER_SIZE = 256 * 1024;

  private final ReadableByteChannel channel;
  /** The channel when it reads into several buffers at once (sockets, files), else null. */
  private final ScatteringByteChannel scattering;
  /** {@code [page view, buf]} for a scattering read (see {@link #readFully(MemorySegment, long, int)}). */
  private final ByteBuffer[] scatter = new ByteBuffer[2];
  /** A reused view of one 1 GiB window of a page region, and which region and window it shows. */
  private ByteBuffer windowView;
  private MemorySegment windowRegion;
  private long windowBase;
  private final ByteBuffer buf;
  /** The whole buffer as a segment (indexes match {@code buf}'s). */
  private final MemorySegment bufSegment;
  /** Stream offset of {@code buf} index 0. */
  private long bufBase;
  private IOException error;
  private boolean eof;
  /** The file under a {@link SeekableChannel}, or null. */
  private final FileChannel file;
  /** File offset minus stream offset (a seekable channel only). */
  private long fileDelta;

  public MigrationInput(ReadableByteChannel channel) {
    this(channel, 0);
  }

  /**
   * A reader whose positions start at {@code startOffset}, so that a nested stream (a PACKAGED blob)
   * reports offsets of the outer stream.
   */
  public MigrationInput(ReadableByteChannel channel, long startOffset) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.scattering = channel instanceof ScatteringByteChannel s ? s : null;
    this.buf = ByteBuffer.allocateDirect(BUFFER_SIZE).order(ByteOrder.BIG_ENDIAN);
    this.bufSegment = MemorySegment.ofBuffer(buf.duplicate().clear());
    this.buf.limit(0);
    this.bufBase = startOffset;
    this.file = channel instanceof SeekableChannel s ? s.fileChannel() : channel instanceof FileChannel f ? f : null;
    if (file != null) {
      try {
        fileDelta = file.position() - startOffset;
      } catch (IOException e) {
        fail(new MigrationStreamException("cannot read the file position: " + e.getMessage(), startOffset, e));
      }
    }
  }

  /** True when the channel is a file: {@link #fileOffset}, {@link #seek}, {@link #readAt} and {@link #fileSize} work. */
  public boolean seekable() {
    return file != null;
  }

  private void requireSeekable() {
    if (file == null) {
      throw new IllegalStateException("the migration channel is not a file: no positional I/O");
    }
  }

  /**
   * The file offset of the next byte to be read (seekable channels only). Positional I/O speaks
   * file offsets, as QEMU's mapped-ram header does; they equal stream offsets for a stream that
   * starts the file.
   */
  public long fileOffset() {
    requireSeekable();
    return position() + fileDelta;
  }

  /** The file's size (seekable channels only). */
  public long fileSize() throws IOException {
    requireSeekable();
    try {
      return file.size();
    } catch (IOException e) {
      throw fail(new MigrationStreamException("cannot read the file size: " + e.getMessage(), position(), e));
    }
  }

  /**
   * Moves forward to file offset {@code fileOffset} (QEMU's {@code qemu_set_offset}); the bytes in
   * between are not read. A position past the end fails at the next read.
   */
  public void seek(long fileOffset) throws IOException {
    requireSeekable();
    checkError();
    long now = position();
    long offset = fileOffset - fileDelta;
    if (offset < now) {
      throw corrupt("seek backwards from file offset 0x" + Long.toHexString(now + fileDelta) + " to 0x" + Long.toHexString(fileOffset));
    }
    if (offset - now <= buf.remaining()) {
      buf.position(buf.position() + (int) (offset - now));
      return;
    }
    try {
      file.position(fileOffset);
    } catch (IOException e) {
      throw fail(new MigrationStreamException("seek to file offset 0x" + Long.toHexString(fileOffset) + " failed: " + e.getMessage(), now, e));
    }
    bufBase = offset;
    buf.clear().limit(0);
    eof = false;
  }

  /**
   * Reads exactly {@code dst.byteSize()} bytes from file offset {@code fileOffset} into {@code dst},
   * without moving the stream's position (QEMU's {@code qemu_get_buffer_at}); the end of the file
   * first is a {@link TruncatedStreamException}.
   */
  public void readAt(MemorySegment dst, long fileOffset) throws IOException {
    requireSeekable();
    checkError();
    ByteBuffer b = dst.asByteBuffer();
    long at = fileOffset;
    try {
      while (b.hasRemaining()) {
        int r = file.read(b, at);
        if (r < 0) {
          throw fail(new TruncatedStreamException(at - fileDelta, b.remaining(), 0));
        }
        at += r;
      }
    } catch (MigrationStreamException e) {
      throw e;
    } catch (IOException e) {
      throw fail(new MigrationStreamException("read at file offset 0x" + Long.toHexString(at) + " failed: " + e.getMessage(), at - fileDelta, e));
    }
  }

  public static MigrationInput of(byte[] bytes) {
    return new MigrationInput(Channels.newChannel(new java.io.ByteArrayInputStream(bytes)));
  }

  public static MigrationInput of(byte[] bytes, long startOffset) {
    return new MigrationInput(
        Channels.newChannel(new java.io.ByteArrayInputStream(bytes)), startOffset);
  }

  /** Stream offset of the next byte to be read. */
  public long position() {
    return bufBase + buf.position();
  }

  /** The first error this stream saw, or null. */
  public IOException error() {
    return error;
  }

  /**
   * Records {@code e} as this stream's error unless one is already recorded, and returns the
   * recorded one. Loaders call it on a validation failure so the stream refuses further reads.
   */
  public IOException fail(IOException e) {
    if (error == null) {
      error = e;
    }
    return error;
  }

  /** A new exception at the current position, recorded as the sticky error, ready to throw. */
  public MigrationStreamException corrupt(String what) {
    MigrationStreamException e = new MigrationStreamException(what, position());
    fail(e);
    return e;
  }

  private void checkError() throws IOException {
    if (error != null) {
      throw error;
    }
  }

  /**
   * Makes at least {@code n} bytes available in the buffer ({@code n <= BUFFER_SIZE}).
   *
   * @return false when the stream ended first (the buffer then holds what there was)
   */
  private boolean fill(int n) throws IOException {
    if (buf.remaining() >= n) {
      return true;
    }
    checkError();
    bufBase += buf.position(); // compact() drops the consumed bytes
    buf.compact();
    try {
      while (buf.position() < n && !eof) {
        int r = channel.read(buf);
        if (r < 0) {
          eof = true;
        } else if (r == 0) {
          Thread.onSpinWait();
        }
      }
    } catch (IOException e) {
      buf.flip();
      throw fail(new MigrationStreamException("read failed: " + e.getMessage(), position(), e));
    }
    buf.flip();
    return buf.remaining() >= n;
  }

  private void require(int n) throws IOException {
    if (error != null) {
      throw error;
    }
    if (buf.remaining() >= n) {
      return;
    }
    if (!fill(n)) {
      throw fail(new TruncatedStreamException(position(), n, buf.remaining()));
    }
  }

  public int readU8() throws IOException {
    require(1);
    return buf.get() & 0xFF;
  }

  /** A signed byte. */
  public byte readS8() throws IOException {
    require(1);
    return buf.get();
  }

  public int readBe16() throws IOException {
    require(2);
    return buf.getShort() & 0xFFFF;
  }

  /** The raw 32 bits (use {@link #readBe32Unsigned()} for counts and lengths). */
  public int readBe32() throws IOException {
    require(4);
    return buf.getInt();
  }

  public long readBe32Unsigned() throws IOException {
    return readBe32() & 0xFFFF_FFFFL;
  }

  public long readBe64() throws IOException {
    require(8);
    return buf.getLong();
  }

  public double readDouble() throws IOException {
    return Double.longBitsToDouble(readBe64());
  }

  /** A QEMU counted string: u8 length, then that many bytes (no NUL); bytes map 1:1 to chars. */
  public String readCountedString() throws IOException {
    int len = readU8();
    byte[] b = new byte[len];
    readFully(b, 0, len);
    return new String(b, StandardCharsets.ISO_8859_1);
  }

  public byte[] readBytes(int len) throws IOException {
    if (len < 0) {
      throw corrupt("negative length " + len);
    }
    byte[] b = new byte[len];
    readFully(b, 0, len);
    return b;
  }

  public void readFully(byte[] dst, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, dst.length);
    readFully(ByteBuffer.wrap(dst, off, len));
  }

  /** Reads exactly {@code dst.remaining()} bytes into {@code dst}. */
  public void readFully(ByteBuffer dst) throws IOException {
    checkError();
    // 1. what the buffer already holds
    int n = Math.min(buf.remaining(), dst.remaining());
    if (n > 0) {
      ByteBuffer slice = buf.slice(buf.position(), n);
      dst.put(slice);
      buf.position(buf.position() + n);
    }
    if (!dst.hasRemaining()) {
      return;
    }
    // 2. large remainders go straight from the channel into dst, small ones through the buffer
    if (dst.remaining() >= BUFFER_SIZE / 2) {
      bufBase += buf.limit();
      buf.clear().limit(0);
      try {
        while (dst.hasRemaining()) {
          int r = channel.read(dst);
          if (r < 0) {
            eof = true;
            throw fail(new TruncatedStreamException(position(), dst.remaining(), 0));
          }
          bufBase += r;
        }
      } catch (MigrationStreamException e) {
        throw e;
      } catch (IOException e) {
        throw fail(new MigrationStreamException("read failed: " + e.getMessage(), position(), e));
      }
      return;
    }
    while (dst.hasRemaining()) {
      require(1);
      int k = Math.min(buf.remaining(), dst.remaining());
      dst.put(buf.slice(buf.position(), k));
      buf.position(buf.position() + k);
    }
  }

  /** Reads exactly {@code dst.byteSize()} bytes into a (native or heap) memory segment. */
  public void readFully(MemorySegment dst) throws IOException {
    checkError();
    long need = dst.byteSize();
    long done = 0;
    // the per-page path: copy out of the buffer without allocating views
    while (done < need) {
      if (!buf.hasRemaining()) {
        if (need - done >= BUFFER_SIZE / 2) {
          readFully(dst.asSlice(done).asByteBuffer());
          return;
        }
        require(1);
      }
      int k = (int) Math.min(buf.remaining(), need - done);
      MemorySegment.copy(bufSegment, buf.position(), dst, done, k);
      buf.position(buf.position() + k);
      done += k;
    }
  }

  /** Largest window of a region the reused view shows (a ByteBuffer holds below 2 GiB). */
  static final long WINDOW_BYTES = 1L << 30;

  /**
   * Reads exactly {@code length} bytes into {@code region} at {@code offset} (a page body into guest
   * RAM), allocating nothing per call. What the buffer holds is copied; when the rest is not buffered
   * and the channel scatters, one read fills the rest of the page straight in RAM and refills the
   * buffer behind it (the record header before it was already buffered: QEMU copies every page out
   * of its buffer instead). The piece must not cross a 1 GiB boundary of the region (a page never
   * does).
   */
  public void readFully(MemorySegment region, long offset, int length) throws IOException {
    checkError();
    Objects.checkFromIndexSize(offset, length, region.byteSize());
    int k = Math.min(buf.remaining(), length);
    if (k > 0) {
      MemorySegment.copy(bufSegment, buf.position(), region, offset, k);
      buf.position(buf.position() + k);
      offset += k;
      length -= k;
    }
    if (length == 0) {
      return;
    }
    if (scattering == null) {
      while (length > 0) {
        require(1);
        k = Math.min(buf.remaining(), length);
        MemorySegment.copy(bufSegment, buf.position(), region, offset, k);
        buf.position(buf.position() + k);
        offset += k;
        length -= k;
      }
      return;
    }
    // the buffer is empty: [rest of the page in RAM, the whole buffer] in one scattering read
    long base = offset & -WINDOW_BYTES;
    if (offset + length - base > WINDOW_BYTES) {
      throw new IllegalArgumentException("read [0x" + Long.toHexString(offset) + ", +" + length + ") crosses a 1 GiB window");
    }
    ByteBuffer view = windowView;
    if (view == null || windowRegion != region || windowBase != base) {
      view = region.asSlice(base, Math.min(WINDOW_BYTES, region.byteSize() - base)).asByteBuffer();
      windowView = view;
      windowRegion = region;
      windowBase = base;
    }
    int at = (int) (offset - base);
    view.limit(at + length).position(at);
    long start = bufBase + buf.limit(); // stream offset of the page's rest
    bufBase = start;
    buf.clear();
    scatter[0] = view;
    scatter[1] = buf;
    try {
      while (view.hasRemaining()) {
        long r = scattering.read(scatter, 0, 2);
        if (r < 0) {
          eof = true;
          bufBase = start + (length - view.remaining());
          buf.limit(0);
          throw fail(new TruncatedStreamException(position(), view.remaining(), 0));
        } else if (r == 0) {
          Thread.onSpinWait();
        }
      }
    } catch (MigrationStreamException e) {
      throw e;
    } catch (IOException e) {
      bufBase = start + (length - view.remaining());
      buf.limit(0);
      throw fail(new MigrationStreamException("read failed: " + e.getMessage(), position(), e));
    } finally {
      scatter[0] = null;
      scatter[1] = null;
    }
    bufBase = start + length; // buf index 0 follows the page
    buf.flip();
  }

  /** Skips {@code n} bytes, failing if the stream ends first. */
  public void skip(long n) throws IOException {
    if (n < 0) {
      throw corrupt("negative skip " + n);
    }
    while (n > 0) {
      require(1);
      int k = (int) Math.min(n, buf.remaining());
      buf.position(buf.position() + k);
      n -= k;
    }
  }

  /**
   * The unsigned byte {@code ahead} bytes past the current position, without consuming anything;
   * -1 if the stream ends before it. {@code ahead} must be below {@link #BUFFER_SIZE}.
   */
  public int peekU8(int ahead) throws IOException {
    if (ahead < 0 || ahead >= BUFFER_SIZE) {
      throw new IllegalArgumentException("peek beyond buffer: " + ahead);
    }
    if (buf.remaining() <= ahead) {
      if (!fill(ahead + 1)) {
        return -1;
      }
    }
    return buf.get(buf.position() + ahead) & 0xFF;
  }

  /** True when no byte is left (blocks until one arrives or the stream ends). */
  public boolean atEnd() throws IOException {
    return peekU8(0) < 0;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
