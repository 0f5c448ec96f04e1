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

  /** The vmdesc at the end of {@code ch}, or null when there is none. */
  static Found find(FileChannel ch) throws IOException {
    long size = ch.size();
    int n = (int) Math.min(size, TAIL_BYTES);
    long base = size - n;
    ByteBuffer buf = ByteBuffer.allocate(n);
    while (buf.hasRemaining()) {
      if (ch.read(buf, base + buf.position()) < 0) {
        return null;
      }
    }
    byte[] data = buf.array();
    int nul = -1;
    for (int i = n - 1; i >= 0; i--) {
      if (data[i] == 0) {
        nul = i;
        break;
      }
    }
    int brace = -1;
    for (int i = Math.max(nul, 0); i < n; i++) {
      if (data[i] == '{') {
        brace = i;
        break;
      }
    }
    if (brace < 5 || data[brace - 5] != 0x06) {
      return null;
    }
    long len = ByteBuffer.wrap(data, brace - 4, 4).getInt() & 0xFFFF_FFFFL;
    if (len > n - brace) {
      return null;
    }
    String json = new String(data, brace, (int) len, StandardCharsets.UTF_8);
    return new Found(base + brace - 5, len, json);
  }
}
