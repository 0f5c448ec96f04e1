package dev.ferry.migration;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.ReturnPathMessage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The return path's messages (destination to source): a {@link Writer} for the destination and a
 * {@link Reader} for the source that dispatches to a {@link Handler} (okhttp's Reader/Writer
 * shape). Framing: be16 type, be16 length, payload; lengths checked as QEMU 7.2's source does.
 */
public final class ReturnPath {
  private ReturnPath() {}

  /** What the source does with each message. */
  public interface Handler {
    void shut(long status) throws IOException;

    default void pong(long value) throws IOException {}

    /** A page request; {@code blockName} is null for REQ_PAGES (same block as the last). */
    default void requestPages(String blockName, long start, long length) throws IOException {
      throw new MigrationStreamException("unexpected page request on the return path (not in postcopy)");
    }

    default void resumeAck(long value) throws IOException {
      throw new MigrationStreamException("unexpected RESUME_ACK on the return path");
    }

    /**
     * The size in bytes this source expects for {@code blockName}'s received bitmap (a RECV_BITMAP
     * blob), checked before the blob is read; -1 when the block is unknown or no recovery runs.
     */
    default long receivedBitmapBytes(String blockName) {
      return -1;
    }

    /**
     * The destination's received bitmap of {@code blockName} (postcopy recovery): bit i of byte
     * i/8 set = target page i arrived.
     */
    default void receivedBitmap(String blockName, byte[] bitmap) throws IOException {
      throw new MigrationStreamException("unexpected RECV_BITMAP on the return path (no postcopy recovery runs)");
    }
  }

  /** Reads messages until SHUT (returned) or an error. */
  public static final class Reader {
    private final MigrationInput in;
    private final Handler handler;
    private String lastBlock;

    public Reader(MigrationInput in, Handler handler) {
      this.in = in;
      this.handler = handler;
    }

    /** Reads one message; returns true when it was SHUT. */
    public boolean readOne() throws IOException {
      long at = in.position();
      int type = in.readBe16();
      int len = in.readBe16();
      ReturnPathMessage m = ReturnPathMessage.fromCodeOrNull(type);
      if (m == null) {
        throw in.corrupt("return path: unknown message type " + type + " (length " + len + ", offset " + at + ")");
      }
      if (len > ReturnPathMessage.MAX_LENGTH) {
        throw in.corrupt("return path: " + m + " length " + len + " exceeds " + ReturnPathMessage.MAX_LENGTH);
      }
      if (m.fixedLength() != ReturnPathMessage.VARIABLE && m.fixedLength() != len) {
        throw in.corrupt("return path: " + m + " has length " + len + ", expected " + m.fixedLength());
      }
      switch (m) {
        case SHUT -> {
          handler.shut(in.readBe32Unsigned());
          return true;
        }
        case PONG -> handler.pong(in.readBe32Unsigned());
        case REQ_PAGES -> {
          long start = in.readBe64();
          long length = in.readBe32Unsigned();
          if (lastBlock == null) {
            throw in.corrupt("return path: REQ_PAGES before any REQ_PAGES_ID named a block");
          }
          handler.requestPages(lastBlock, start, length);
        }
        case REQ_PAGES_ID -> {
          if (len < 13) {
            throw in.corrupt("return path: REQ_PAGES_ID length " + len + " is below 13");
          }
          long start = in.readBe64();
          long length = in.readBe32Unsigned();
          int n = in.readU8();
          if (len != 13 + n) {
            throw in.corrupt("return path: REQ_PAGES_ID length " + len + " does not match 13 + name length " + n);
          }
          lastBlock = new String(in.readBytes(n), StandardCharsets.ISO_8859_1);
          handler.requestPages(lastBlock, start, length);
        }
        case RESUME_ACK -> handler.resumeAck(in.readBe32Unsigned());
        case RECV_BITMAP -> {
          if (len < 1) {
            throw in.corrupt("return path: RECV_BITMAP with length 0 (no block name)");
          }
          int n = in.readU8();
          if (len != 1 + n) {
            throw in.corrupt("return path: RECV_BITMAP length " + len + " does not match 1 + name length " + n);
          }
          String block = new String(in.readBytes(n), StandardCharsets.ISO_8859_1);
          long expected = handler.receivedBitmapBytes(block);
          if (expected < 0) {
            throw in.corrupt("return path: RECV_BITMAP for unknown RAM block '" + block + "'");
          }
          long size = in.readBe64();
          if (size != expected) {
            throw in.corrupt("return path: RECV_BITMAP of block '" + block + "' has size " + size + ", expected " + expected);
          }
          byte[] bitmap = in.readBytes((int) size);
          long end = in.readBe64();
          if (end != ReturnPathMessage.RECV_BITMAP_ENDING) {
            throw in.corrupt(
                String.format(
                    "return path: RECV_BITMAP of block '%s' ends with 0x%016x, expected 0x%016X",
                    block, end, ReturnPathMessage.RECV_BITMAP_ENDING));
          }
          handler.receivedBitmap(block, bitmap);
        }
      }
      return false;
    }
  }

  /** Writes messages; each is flushed at once, and writers from several threads are serialised. */
  public static final class Writer {
    private final MigrationOutput out;
    private String lastBlock;

    public Writer(MigrationOutput out) {
      this.out = out;
    }

    public synchronized void shut(int status) throws IOException {
      out.writeBe16(ReturnPathMessage.SHUT.code()).writeBe16(4).writeBe32(status).flush();
    }

    public synchronized void pong(long value) throws IOException {
      out.writeBe16(ReturnPathMessage.PONG.code()).writeBe16(4).writeBe32(value).flush();
    }

    /** REQ_PAGES_ID when the block differs from the last request, else REQ_PAGES. */
    public synchronized void requestPages(String block, long start, int length) throws IOException {
      if (block.equals(lastBlock)) {
        out.writeBe16(ReturnPathMessage.REQ_PAGES.code()).writeBe16(12).writeBe64(start).writeBe32(length);
      } else {
        byte[] name = block.getBytes(StandardCharsets.ISO_8859_1);
        out.writeBe16(ReturnPathMessage.REQ_PAGES_ID.code()).writeBe16(13 + name.length);
        out.writeBe64(start).writeBe32(length).writeU8(name.length).writeBytes(name);
        lastBlock = block;
      }
      out.flush();
    }

    public synchronized void resumeAck(int value) throws IOException {
      out.writeBe16(ReturnPathMessage.RESUME_ACK.code()).writeBe16(4).writeBe32(value).flush();
    }

    /**
     * RECV_BITMAP (postcopy recovery): the header naming the block, then, outside the header's
     * length, be64 size, the bitmap's little-endian bytes (bit i of byte i/8 = target page i
     * received; {@code bitmap.length} a multiple of 8), and the end mark 0x0123456789ABCDEF.
     */
    public synchronized void receivedBitmap(String block, byte[] bitmap) throws IOException {
      byte[] name = block.getBytes(StandardCharsets.ISO_8859_1);
      out.writeBe16(ReturnPathMessage.RECV_BITMAP.code()).writeBe16(1 + name.length).writeU8(name.length).writeBytes(name);
      out.writeBe64(bitmap.length).writeBytes(bitmap).writeBe64(ReturnPathMessage.RECV_BITMAP_ENDING).flush();
    }

    /** Forgets the last requested block, so the next request names it (after recovery). */
    public synchronized void forgetLastBlock() {
      lastBlock = null;
    }
  }
}
