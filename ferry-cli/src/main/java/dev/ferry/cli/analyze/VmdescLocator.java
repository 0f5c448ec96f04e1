package dev.ferry.cli.analyze;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;

/**
 * Finds the vmdesc JSON at the end of a stream file the way QEMU's analyzer does: in the last 10 MiB,
 * after the last NUL byte, the first '{' must be preceded by 0x06 and a be32 length. Seeking the
 * tail (rather than walking the stream first) is what lets the device sections be decoded on the
 * first and only pass: their bodies have no length, only the vmdesc says how to read them. The walk
 * later checks that the stream's own EOF is followed by exactly this vmdesc.
 */
final class VmdescLocator {
  static final int TAIL_BYTES = 10 << 20;

  /** @param offset stream offset of the 0x06 byte */
  record Found(long offset, long length, String json) {}

  private VmdescLocator() {}

  /** Bytes read at a time while searching: the tail is never held whole (10 MiB, twice over). */
  static final int CHUNK_BYTES = 64 << 10;

  /** The vmdesc at the end of {@code ch}, or null when there is none. */
  static Found find(FileChannel ch) throws IOException {
    long size = ch.size();
    int n = (int) Math.min(size, TAIL_BYTES);
    long base = size - n;
    // the last NUL of the tail, read backwards a chunk at a time
    long nul = -1;
    for (long end = size; end > base && nul < 0; ) {
      int len = (int) Math.min(CHUNK_BYTES, end - base);
      byte[] chunk = readAt(ch, end - len, len);
      if (chunk == null) {
        return null;
      }
      for (int i = len - 1; i >= 0; i--) {
        if (chunk[i] == 0) {
          nul = end - len + i;
          break;
        }
      }
      end -= len;
    }
    // then the first '{' from there on
    long brace = -1;
    for (long at = Math.max(nul, base); at < size && brace < 0; ) {
      int len = (int) Math.min(CHUNK_BYTES, size - at);
      byte[] chunk = readAt(ch, at, len);
      if (chunk == null) {
        return null;
      }
      for (int i = 0; i < len; i++) {
        if (chunk[i] == '{') {
          brace = at + i;
          break;
        }
      }
      at += len;
    }
    if (brace < 0 || brace - base < 5) {
      return null;
    }
    byte[] head = readAt(ch, brace - 5, 5);
    if (head == null || head[0] != 0x06) {
      return null;
    }
    long len = ByteBuffer.wrap(head, 1, 4).getInt() & 0xFFFF_FFFFL;
    if (len > size - brace) {
      return null;
    }
    byte[] json = readAt(ch, brace, (int) len);
    if (json == null) {
      return null;
    }
    return new Found(brace - 5, len, new String(json, StandardCharsets.UTF_8));
  }

  /** {@code len} bytes at {@code pos}, or null when the file ends first. */
  private static byte[] readAt(FileChannel ch, long pos, int len) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(len);
    while (buf.hasRemaining()) {
      if (ch.read(buf, pos + buf.position()) < 0) {
        return null;
      }
    }
    return buf.array();
  }
}
