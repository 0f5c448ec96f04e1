package dev.ferry.ram;

import com.github.luben.zstd.EndDirective;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdException;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.util.zip.Deflater;

/**
 * The sending side of one QEMU 7.2 multifd channel: writes the init message, then packets of up to
 * 128 pages of one RAM block in 7.2's format. Raw pages go out straight from guest RAM in one
 * gathering write with the header; zlib and zstd use one compression stream for the whole channel,
 * flushed (zlib {@code Z_SYNC_FLUSH}, zstd {@code ZSTD_e_flush}) at the end of every packet and never
 * ended, as 7.2 does, so 7.2's receiver (and {@link MultifdPageReader}) decodes it.
 *
 * <p>One instance per channel, used by one thread. {@link #close()} frees the compressor.
 */
public final class MultifdPageWriter implements AutoCloseable {
  private final MultifdCompression method;
  private final int level;
  private final MultifdPacket header = new MultifdPacket();
  private final ByteBuffer headerBuf = ByteBuffer.allocateDirect(MultifdPacket.LENGTH);
  private final ByteBuffer[] iov = new ByteBuffer[1 + MultifdPacket.PAGE_COUNT];
  private Deflater deflater;
  private ZstdCompressCtx zstd;
  private ByteBuffer payload;
  private long multifdBytes;
  private long wireBytes;

  /**
   * @param method the channel's compression
   * @param level {@code multifd-zlib-level} (0…9) or {@code multifd-zstd-level} (0…20); ignored for none
   */
  public MultifdPageWriter(MultifdCompression method, int level) {
    this.method = method;
    this.level = level;
  }

  /** Writes the 64-byte init message of channel {@code id} with the VM's {@code uuid} (16 bytes). */
  public void writeInit(GatheringByteChannel out, byte[] uuid, int id) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(MultifdInit.LENGTH);
    new MultifdInit(uuid, id).write(b);
    b.flip();
    while (b.hasRemaining()) {
      out.write(b);
    }
    wireBytes += MultifdInit.LENGTH;
  }

  /**
   * Writes one packet: the pages at {@code offsets[0..count)} of {@code block} (count 0 for a packet
   * without pages), with {@link MultifdPacket#FLAG_SYNC} when {@code sync}.
   */
  public void writePacket(GatheringByteChannel out, boolean sync, long packetNum, RamBlock block, long[] offsets, int count)
      throws IOException {
    if (count < 0 || count > MultifdPacket.PAGE_COUNT) {
      throw new IllegalArgumentException("multifd packet of " + count + " pages");
    }
    int flags = sync ? MultifdPacket.FLAG_SYNC : 0;
    int size = 0;
    int n = 1;
    if (count > 0) {
      flags |= method.flag();
      MemorySegment mem = block.memory();
      switch (method) {
        case NONE -> {
          // one iovec per run of adjacent pages, straight from guest RAM
          for (int i = 0, end; i < count; i = end) {
            end = MultifdPacket.runEnd(offsets, i, count);
            iov[n++] = run(mem, offsets, i, end);
          }
          size = count * MultifdPacket.PAGE_SIZE;
        }
        case ZLIB -> {
          iov[n++] = deflate(mem, offsets, count);
          size = iov[1].remaining();
        }
        case ZSTD -> {
          iov[n++] = zstd(mem, offsets, count);
          size = iov[1].remaining();
        }
      }
    }
    header.set(flags, count, size, packetNum, count > 0 ? block.name() : "", offsets);
    headerBuf.clear();
    header.write(headerBuf);
    headerBuf.flip();
    iov[0] = headerBuf;
    long left = MultifdPacket.LENGTH + (long) size;
    while (left > 0) {
      left -= out.write(iov, 0, n);
    }
    for (int i = 1; i < n; i++) {
      iov[i] = null;
    }
    multifdBytes += MultifdPacket.LENGTH + (long) count * MultifdPacket.PAGE_SIZE;
    wireBytes += MultifdPacket.LENGTH + (long) size;
  }

  /** What 7.2 counts as {@code multifd-bytes}: header plus uncompressed page bytes per packet. */
  public long multifdBytes() {
    return multifdBytes;
  }

  /** Bytes actually written, init message included. */
  public long wireBytes() {
    return wireBytes;
  }

  /** Pages {@code i} to {@code end} (adjacent in the block) as one buffer over guest RAM. */
  private static ByteBuffer run(MemorySegment mem, long[] offsets, int i, int end) {
    return mem.asSlice(offsets[i], (long) (end - i) * MultifdPacket.PAGE_SIZE).asByteBuffer();
  }

  private ByteBuffer payloadBuffer() {
    if (payload == null) {
      payload = ByteBuffer.allocateDirect(MultifdPacket.MAX_COMPRESSED_SIZE);
    }
    payload.clear();
    return payload;
  }

  private ByteBuffer deflate(MemorySegment mem, long[] offsets, int count) throws IOException {
    if (deflater == null) {
      deflater = new Deflater(level); // zlib wrapper, as deflateInit
    }
    ByteBuffer dst = payloadBuffer();
    for (int i = 0, end; i < count; i = end) {
      end = MultifdPacket.runEnd(offsets, i, count);
      deflater.setInput(run(mem, offsets, i, end));
      int mode = end == count ? Deflater.SYNC_FLUSH : Deflater.NO_FLUSH;
      while (true) {
        deflater.deflate(dst, mode);
        if (!dst.hasRemaining()) {
          throw new IOException("multifd: zlib output of " + count + " pages exceeds " + dst.capacity() + " bytes");
        }
        // NO_FLUSH: done when the page is consumed; SYNC_FLUSH: done when output stopped short of the space
        if (mode == Deflater.NO_FLUSH ? deflater.needsInput() : dst.hasRemaining() && deflater.needsInput()) {
          break;
        }
      }
    }
    return dst.flip();
  }

  private ByteBuffer zstd(MemorySegment mem, long[] offsets, int count) throws IOException {
    if (zstd == null) {
      zstd = new ZstdCompressCtx().setLevel(level);
    }
    ByteBuffer dst = payloadBuffer();
    try {
      // one call per run of adjacent pages (7.2 feeds page by page; the stream means the same)
      for (int i = 0, end; i < count; i = end) {
        end = MultifdPacket.runEnd(offsets, i, count);
        ByteBuffer src = run(mem, offsets, i, end);
        EndDirective mode = end == count ? EndDirective.FLUSH : EndDirective.CONTINUE;
        boolean done;
        do {
          done = zstd.compressDirectByteBufferStream(dst, src, mode);
          if (!dst.hasRemaining()) {
            throw new IOException("multifd: zstd output of " + count + " pages exceeds " + dst.capacity() + " bytes");
          }
        } while (src.hasRemaining() || (mode == EndDirective.FLUSH && !done));
      }
    } catch (ZstdException e) {
      throw new IOException("multifd: zstd compression failed: " + e.getMessage(), e);
    }
    return dst.flip();
  }

  @Override
  public void close() {
    if (deflater != null) {
      deflater.end();
      deflater = null;
    }
    if (zstd != null) {
      zstd.close();
      zstd = null;
    }
  }
}
