package dev.ferry.block;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Reads one {@code block} section body (up to and including EOS) and hands each record to a
 * {@link Handler}: the destination's loader and {@code ferry analyze} share it. Strict where QEMU is
 * lax: a word must be exactly DEVICE_BLOCK (maybe with ZERO_BLOCK), PROGRESS (0..100) or EOS; a
 * chunk's offset must fit a 64-bit byte offset. Names are bounded by their u8 length; the payload
 * is read into a caller's 1 MiB buffer, so nothing is allocated from stream values.
 */
public final class BlockReader {
  /** What a body holds, record by record. */
  public interface Handler {
    /** A PROGRESS record. */
    default void progress(int percent, long streamOffset) throws IOException {}

    /**
     * A DEVICE_BLOCK record at {@code byteOffset} of {@code device}: {@code data} holds exactly 1
     * MiB (position 0, limit 1 MiB), or is null for a ZERO_BLOCK.
     */
    void chunk(String device, long byteOffset, ByteBuffer data, long streamOffset) throws IOException;
  }

  /** Where each chunk's payload is read: a buffer of at least 1 MiB per call (direct is best). */
  @FunctionalInterface
  public interface ChunkBuffers {
    ByteBuffer take() throws IOException;
  }

  private BlockReader() {}

  /**
   * Reads records until EOS. {@code buffer} is a scratch buffer of at least 1 MiB (direct is best),
   * reused for every chunk.
   *
   * @throws MigrationStreamException for a bad word, naming it and the stream offset
   */
  public static void readBody(MigrationInput in, Handler handler, ByteBuffer buffer) throws IOException {
    readBody(in, handler, () -> buffer);
  }

  /**
   * Reads records until EOS, each chunk's payload into a buffer from {@code buffers} (taken only for
   * a chunk with data), which the handler then owns: it may keep it (e.g. to write it later).
   *
   * @throws MigrationStreamException for a bad word, naming it and the stream offset
   */
  public static void readBody(MigrationInput in, Handler handler, ChunkBuffers buffers) throws IOException {
    while (true) {
      long at = in.position();
      long word = in.readBe64();
      int flags = (int) (word & BlockFlag.MASK);
      long value = word >>> 9;
      if (flags == BlockFlag.EOS.code()) {
        if (value != 0) {
          throw corrupt(in, String.format("block EOS record with a value: word 0x%016x", word), at);
        }
        return;
      }
      if (flags == BlockFlag.PROGRESS.code()) {
        if (value > 100) {
          throw corrupt(in, "block progress " + Long.toUnsignedString(value) + "% is over 100", at);
        }
        handler.progress((int) value, at);
        continue;
      }
      boolean zero = flags == (BlockFlag.DEVICE_BLOCK.code() | BlockFlag.ZERO_BLOCK.code());
      if (flags != BlockFlag.DEVICE_BLOCK.code() && !zero) {
        throw corrupt(in, String.format("unknown block migration flags 0x%x in word 0x%016x", flags, word), at);
      }
      if (value > Long.MAX_VALUE / BlockDescriptor.SECTOR_BYTES) {
        throw corrupt(in, "block chunk sector " + Long.toUnsignedString(value) + " is past any disk", at);
      }
      int len = in.readU8();
      byte[] name = in.readBytes(len);
      String device = new String(name, StandardCharsets.UTF_8);
      long offset = value * BlockDescriptor.SECTOR_BYTES;
      if (zero) {
        handler.chunk(device, offset, null, at);
      } else {
        ByteBuffer buffer = buffers.take();
        if (buffer.capacity() < BlockDescriptor.CHUNK_BYTES) {
          throw new IllegalArgumentException("block chunk buffer smaller than 1 MiB");
        }
        ByteBuffer data = buffer.clear().limit(BlockDescriptor.CHUNK_BYTES);
        in.readFully(data);
        data.flip();
        handler.chunk(device, offset, data, at);
      }
    }
  }

  private static MigrationStreamException corrupt(MigrationInput in, String what, long at) {
    MigrationStreamException e = new MigrationStreamException(what, at);
    in.fail(e);
    return e;
  }
}
