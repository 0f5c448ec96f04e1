package dev.ferry.ram;

import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.stream.TruncatedStreamException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ScatteringByteChannel;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Places the pages of one QEMU 7.2 multifd channel into RAM blocks: checks a packet's block and
 * offsets as 7.2's receiver does (QEMU's texts), then reads raw pages straight into guest RAM or
 * decompresses them there through the channel's one zlib or zstd stream, which lives for the whole
 * migration (each packet ends with a sync flush, never a stream end).
 *
 * <p>One instance per channel; not thread-safe. {@link #close()} frees the decompressor.
 */
public final class MultifdPageReader implements AutoCloseable {
  private final int channel;
  private MultifdCompression method;
  private Inflater inflater;
  private ZstdDecompressCtx zstd;
  private ByteBuffer probe;
  private ByteBuffer payload;
  private long pages;
  private long payloadBytes;

  /**
   * @param channel the channel id, for messages
   * @param method the destination's {@code multifd-compression}, or null to take it from the first
   *     packet with pages (an analyzer that was not told)
   */
  public MultifdPageReader(int channel, MultifdCompression method) {
    this.channel = channel;
    this.method = method;
  }

  /** The channel's method: the configured one, or the one its first page packet named (else null). */
  public MultifdCompression method() {
    return method;
  }

  /** Pages placed so far. */
  public long pages() {
    return pages;
  }

  /** Payload bytes read so far (page bytes, or compressed bytes). */
  public long payloadBytes() {
    return payloadBytes;
  }

  /**
   * Reads the payload of {@code p} (whose header was just read from {@code in}) into the blocks of
   * {@code blocks}. A packet without pages has no payload.
   */
  public void readPages(MultifdPacket p, MigrationInput in, RamBlockResolver blocks) throws IOException {
    readPages(p, new Buffered(in), blocks);
  }

  /**
   * Reads the payload of {@code p} (whose header {@code in} just read) into the blocks of {@code
   * blocks}: raw pages with one scattering read straight into guest RAM, compressed ones into the
   * reused payload buffer and from there decompressed into RAM.
   */
  public void readPages(MultifdPacket p, ExactInput in, RamBlockResolver blocks) throws IOException {
    readPages(p, (Source) in, blocks);
  }

  private void readPages(MultifdPacket p, Source in, RamBlockResolver blocks) throws IOException {
    int n = p.normalPages();
    if (n == 0) {
      return;
    }
    long at = p.streamOffset();
    int bits = p.flags() & MultifdCompression.MASK;
    if (method == null) {
      try {
        method = MultifdCompression.fromFlags(bits);
      } catch (IllegalArgumentException e) {
        throw in.fail(new MigrationStreamException("multifd " + channel + ": " + e.getMessage(), at));
      }
    }
    if (bits != method.flag()) {
      throw in.fail(new MigrationStreamException(
          String.format("multifd %d: flags received %x flags expected %x", channel, bits, method.flag()), at));
    }
    RamBlock b = blocks.resolve(p.block());
    if (b == null) {
      throw in.fail(new MigrationStreamException("multifd: unknown ram block " + p.block(), at));
    }
    long max = b.usedLength() - MultifdPacket.PAGE_SIZE;
    for (int i = 0; i < n; i++) {
      long off = p.offset(i);
      if (off < 0 || off > max) {
        throw in.fail(new MigrationStreamException(
            String.format("multifd: offset too long %s (max %x)", Long.toUnsignedString(off), b.usedLength()),
            at + MultifdPacket.OFFSETS_AT + 8L * i));
      }
    }
    MemorySegment mem = b.memory();
    switch (method) {
      case NONE -> {
        in.readPages(p, mem);
        payloadBytes += (long) n * MultifdPacket.PAGE_SIZE;
      }
      case ZLIB -> inflate(p, in, mem);
      case ZSTD -> unzstd(p, in, mem);
    }
    pages += n;
  }

  /** Reads the packet's compressed payload into the reused direct buffer. */
  private ByteBuffer payload(MultifdPacket p, Source in) throws IOException {
    int size = p.nextPacketSize();
    if (size < 0 || size > MultifdPacket.MAX_COMPRESSED_SIZE) {
      throw in.fail(new MigrationStreamException(String.format(
          "multifd %d: packet size received %s exceeds the receive buffer of %d bytes", channel,
          Integer.toUnsignedString(size), MultifdPacket.MAX_COMPRESSED_SIZE), p.streamOffset()));
    }
    if (payload == null) {
      payload = ByteBuffer.allocateDirect(MultifdPacket.MAX_COMPRESSED_SIZE);
    }
    payload.clear().limit(size);
    in.readFully(payload);
    payload.flip();
    payloadBytes += size;
    return payload;
  }

  /** The packet's run of pages from {@code i} to {@code end} as one buffer over guest RAM. */
  private static ByteBuffer run(MultifdPacket p, MemorySegment mem, int i, int end) {
    return mem.asSlice(p.offset(i), (long) (end - i) * MultifdPacket.PAGE_SIZE).asByteBuffer();
  }

  private void inflate(MultifdPacket p, Source in, MemorySegment mem) throws IOException {
    long at = p.streamOffset();
    ByteBuffer src = payload(p, in);
    if (inflater == null) {
      inflater = new Inflater(); // zlib wrapper: the channel's first packet starts with 78 01
    }
    inflater.setInput(src);
    long out = 0;
    try {
      for (int i = 0, end; i < p.normalPages(); i = end) {
        end = p.runEnd(i);
        ByteBuffer dst = run(p, mem, i, end);
        while (dst.hasRemaining()) {
          long readBefore = inflater.getBytesRead();
          int k = inflater.inflate(dst);
          out += k;
          if (k == 0 && inflater.getBytesRead() == readBefore) {
            throw in.fail(new MigrationStreamException(String.format(
                "multifd %d: inflate generated too few output (%d of %d bytes)", channel, out,
                (long) p.normalPages() * MultifdPacket.PAGE_SIZE), at));
          }
        }
      }
      // the sync flush's empty stored block (00 00 ff ff) may still be unread: consume it
      if (inflater.getRemaining() > 0 && inflater.inflate(probe()) > 0) {
        throw in.fail(new MigrationStreamException(String.format(
            "multifd %d: inflate generated more output than the packet's %d pages", channel, p.normalPages()), at));
      }
      if (inflater.getRemaining() > 0) {
        throw in.fail(new MigrationStreamException(String.format(
            "multifd %d: %d compressed bytes left after the packet's %d pages", channel, inflater.getRemaining(),
            p.normalPages()), at));
      }
    } catch (DataFormatException e) {
      throw in.fail(new MigrationStreamException(
          "multifd " + channel + ": inflate failed: " + e.getMessage(), at, e));
    }
  }

  /** One byte of room to find out whether a payload goes on after the packet's pages. */
  private ByteBuffer probe() {
    if (probe == null) {
      probe = ByteBuffer.allocateDirect(1);
    }
    return probe.clear();
  }

  private void unzstd(MultifdPacket p, Source in, MemorySegment mem) throws IOException {
    long at = p.streamOffset();
    ByteBuffer src = payload(p, in);
    if (zstd == null) {
      zstd = new ZstdDecompressCtx();
    }
    long out = 0;
    try {
      // one call per run of adjacent pages (7.2 decompresses page by page; the stream is the same)
      for (int i = 0, end; i < p.normalPages(); i = end) {
        end = p.runEnd(i);
        ByteBuffer dst = run(p, mem, i, end);
        while (dst.hasRemaining()) {
          int before = dst.position();
          int srcBefore = src.position();
          zstd.decompressDirectByteBufferStream(dst, src);
          out += dst.position() - before;
          if (dst.position() == before && src.position() == srcBefore) {
            throw in.fail(new MigrationStreamException(String.format(
                "multifd %d: packet size received %d size expected %d", channel, out,
                (long) p.normalPages() * MultifdPacket.PAGE_SIZE), at));
          }
        }
      }
      if (src.hasRemaining()) {
        ByteBuffer extra = probe();
        zstd.decompressDirectByteBufferStream(extra, src);
        if (extra.position() > 0 || src.hasRemaining()) {
          throw in.fail(new MigrationStreamException(String.format(
              "multifd %d: %d compressed bytes left after the packet's %d pages", channel, src.remaining(),
              p.normalPages()), at));
        }
      }
    } catch (ZstdException e) {
      throw in.fail(new MigrationStreamException(
          "multifd " + channel + ": decompressStream returned " + e.getMessage(), at, e));
    }
  }

  /** Where a packet's payload comes from. */
  private sealed interface Source permits Buffered, ExactInput {
    /** Reads exactly {@code dst.remaining()} bytes. */
    void readFully(ByteBuffer dst) throws IOException;

    /** Reads the packet's raw pages into {@code mem} at its offsets. */
    void readPages(MultifdPacket p, MemorySegment mem) throws IOException;

    /** Records {@code e} as the source's error (if it keeps one) and returns what to throw. */
    IOException fail(IOException e);
  }

  /** A buffered stream (the analyzer's): pages are copied out of its buffer, or read past it when large. */
  private record Buffered(MigrationInput in) implements Source {
    @Override
    public void readFully(ByteBuffer dst) throws IOException {
      in.readFully(dst);
    }

    @Override
    public void readPages(MultifdPacket p, MemorySegment mem) throws IOException {
      for (int i = 0, end; i < p.normalPages(); i = end) {
        end = p.runEnd(i);
        in.readFully(mem.asSlice(p.offset(i), (long) (end - i) * MultifdPacket.PAGE_SIZE));
      }
    }

    @Override
    public IOException fail(IOException e) {
      return in.fail(e);
    }
  }

  /**
   * A multifd channel read exactly, never ahead: each header into a reused buffer, a compressed
   * payload into the reader's buffer, and raw pages with one scattering read of the packet's runs of
   * adjacent pages straight into guest RAM (the header lists the offsets before the data, so nothing
   * is copied; QEMU 7.2's receiver reads the pages the same way). Counts its stream offset for
   * messages. One per channel, used by one thread.
   */
  public static final class ExactInput implements Source {
    private final ReadableByteChannel channel;
    private final ScatteringByteChannel scattering;
    private final ByteBuffer header = ByteBuffer.allocateDirect(MultifdPacket.LENGTH);
    private final ByteBuffer[] iov = new ByteBuffer[MultifdPacket.PAGE_COUNT];
    private long position;

    /** @param position the stream offset of the next byte (0: the init message is read through it too) */
    public ExactInput(ReadableByteChannel channel, long position) {
      this.channel = channel;
      this.scattering = channel instanceof ScatteringByteChannel s ? s : null;
      this.position = position;
    }

    /** The stream offset of the next byte. */
    public long position() {
      return position;
    }

    /**
     * Reads and checks the next header into {@code p} ({@link MultifdPacket#parse}).
     *
     * @return false on a clean end of the channel exactly at a header boundary
     */
    public boolean readHeader(MultifdPacket p) throws IOException {
      long at = position;
      header.clear();
      int r = channel.read(header);
      if (r < 0) {
        return false;
      }
      position += r;
      readFully(header);
      p.parse(header.flip(), at);
      return true;
    }

    @Override
    public void readFully(ByteBuffer dst) throws IOException {
      while (dst.hasRemaining()) {
        int r = channel.read(dst);
        if (r < 0) {
          throw new TruncatedStreamException(position, dst.remaining(), 0);
        }
        position += r;
      }
    }

    @Override
    public void readPages(MultifdPacket p, MemorySegment mem) throws IOException {
      int k = 0;
      long left = 0;
      for (int i = 0, end; i < p.normalPages(); i = end) {
        end = p.runEnd(i);
        iov[k] = run(p, mem, i, end);
        left += iov[k++].remaining();
      }
      try {
        int first = 0;
        while (left > 0) {
          long r;
          if (scattering != null) {
            r = scattering.read(iov, first, k - first);
          } else {
            r = channel.read(iov[first]);
          }
          if (r < 0) {
            throw new TruncatedStreamException(position, left, 0);
          }
          position += r;
          left -= r;
          while (first < k && !iov[first].hasRemaining()) {
            first++;
          }
        }
      } finally {
        java.util.Arrays.fill(iov, 0, k, null);
      }
    }

    @Override
    public IOException fail(IOException e) {
      return e;
    }
  }

  @Override
  public void close() {
    if (inflater != null) {
      inflater.end();
      inflater = null;
    }
    if (zstd != null) {
      zstd.close();
      zstd = null;
    }
  }
}
