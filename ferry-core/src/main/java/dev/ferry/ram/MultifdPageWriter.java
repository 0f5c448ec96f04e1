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
import java.util.Arrays;
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
  /**
   * Wire bytes after which no more packets are staged for one write: raw packets (512 KiB) go two to
   * a write at most, small compressed ones as many as the caller has (the sender's queue bounds it).
   */
  static final int STAGE_BYTES = 1 << 20;
  /** The staged packets' headers, each followed by its compressed payload (room for two worst cases). */
  private final ByteBuffer staging =
      ByteBuffer.allocateDirect(2 * (MultifdPacket.LENGTH + MultifdPacket.MAX_COMPRESSED_SIZE));
  /** The next write: per staged packet its header (with a compressed payload) or header and page runs. */
  private final ByteBuffer[] iov = new ByteBuffer[4 * (1 + MultifdPacket.PAGE_COUNT)];
  private int iovCount;
  private int stagingAt;
  private int staged;
  private long stagedBytes;
  private Deflater deflater;
  private ZstdCompressCtx zstd;
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
    stagePacket(sync, packetNum, block, offsets, count);
    flush(out);
  }

  /**
   * True when one more packet of any kind fits behind the staged ones (room for its header, its
   * worst-case compressed payload and its iovecs); always true when nothing is staged.
   */
  public boolean canStage() {
    return staged == 0
        || stagedBytes < STAGE_BYTES
            && staging.capacity() - stagingAt >= MultifdPacket.LENGTH + MultifdPacket.MAX_COMPRESSED_SIZE
            && iovCount + 1 + MultifdPacket.PAGE_COUNT <= iov.length;
  }

  /**
   * Prepares one packet ({@link #writePacket}'s arguments) behind the staged ones; {@link #flush}
   * writes them all in one gathering write. Raw page bytes are read from guest RAM by that write;
   * compressed ones now. Several small (compressed) packets per write: one wake-up of the receiving
   * thread instead of one per packet. Needs {@link #canStage()}. The bytes are counted ({@link
   * #multifdBytes}, {@link #wireBytes}) when staged.
   */
  public void stagePacket(boolean sync, long packetNum, RamBlock block, long[] offsets, int count) throws IOException {
    if (count < 0 || count > MultifdPacket.PAGE_COUNT) {
      throw new IllegalArgumentException("multifd packet of " + count + " pages");
    }
    if (!canStage()) {
      throw new IllegalStateException("multifd: no room to stage another packet; flush first");
    }
    int flags = sync ? MultifdPacket.FLAG_SYNC : 0;
    int start = stagingAt;
    int size = 0;
    int headerIov = iovCount++;
    if (count > 0) {
      flags |= method.flag();
      MemorySegment mem = block.memory();
      switch (method) {
        case NONE -> {
          // one iovec per run of adjacent pages, straight from guest RAM
          for (int i = 0, end; i < count; i = end) {
            end = MultifdPacket.runEnd(offsets, i, count);
            iov[iovCount++] = run(mem, offsets, i, end);
          }
          size = count * MultifdPacket.PAGE_SIZE;
        }
        case ZLIB -> size = deflate(mem, offsets, count, payloadRoom(start)).position();
        case ZSTD -> size = zstd(mem, offsets, count, payloadRoom(start)).position();
      }
    }
    header.set(flags, count, size, packetNum, count > 0 ? block.name() : "", offsets);
    header.write(staging.clear().position(start));
    int end = method == MultifdCompression.NONE ? start + MultifdPacket.LENGTH : start + MultifdPacket.LENGTH + size;
    iov[headerIov] = staging.slice(start, end - start); // header, and a compressed payload after it
    stagingAt = end;
    staged++;
    stagedBytes += MultifdPacket.LENGTH + (long) size;
    multifdBytes += MultifdPacket.LENGTH + (long) count * MultifdPacket.PAGE_SIZE;
    wireBytes += MultifdPacket.LENGTH + (long) size;
  }

  /** Writes the staged packets in one gathering write (as many calls as the channel needs). */
  public void flush(GatheringByteChannel out) throws IOException {
    long left = stagedBytes;
    int first = 0;
    try {
      while (left > 0) {
        left -= out.write(iov, first, iovCount - first);
        while (first < iovCount && !iov[first].hasRemaining()) {
          first++;
        }
      }
    } finally {
      Arrays.fill(iov, 0, iovCount, null);
      iovCount = 0;
      stagingAt = 0;
      staged = 0;
      stagedBytes = 0;
    }
  }

  /** Where a compressed payload goes: after its header's place, at most 7.2's receive buffer. */
  private ByteBuffer payloadRoom(int headerAt) {
    int from = headerAt + MultifdPacket.LENGTH;
    return staging.slice(from, Math.min(MultifdPacket.MAX_COMPRESSED_SIZE, staging.capacity() - from));
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

  private ByteBuffer deflate(MemorySegment mem, long[] offsets, int count, ByteBuffer dst) throws IOException {
    if (deflater == null) {
      deflater = new Deflater(level); // zlib wrapper, as deflateInit
    }
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
    return dst;
  }

  private ByteBuffer zstd(MemorySegment mem, long[] offsets, int count, ByteBuffer dst) throws IOException {
    if (zstd == null) {
      zstd = new ZstdCompressCtx().setLevel(level);
    }
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
    return dst;
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
