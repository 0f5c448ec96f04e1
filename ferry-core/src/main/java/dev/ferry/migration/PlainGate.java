package dev.ferry.migration;

import dev.ferry.transport.ForwardingMigrationChannel;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ScatteringByteChannel;
import java.util.Objects;

/**
 * A destination without TLS looks at the first bytes of a tcp or unix connection before the stream
 * loader does: a TLS ClientHello (a handshake record, {@code 16 03 0x}) is a source that was given
 * {@code tls-creds} while this side was not. That connection is refused with a one-line reason and
 * the destination keeps listening; anything else is handed on, first bytes included, and the
 * loader judges it as before.
 */
final class PlainGate {
  private static final int PEEK = 3;

  private PlainGate() {}

  /** A peer refused before its stream was read. */
  static final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    RefusedException(String message) {
      super(message);
    }
  }

  static MigrationChannel admit(MigrationChannel raw) throws IOException {
    ByteBuffer head = ByteBuffer.allocate(PEEK);
    try {
      while (head.hasRemaining()) {
        if (raw.read(head) < 0) {
          break;
        }
      }
    } catch (IOException e) {
      raw.close();
      throw new RefusedException(raw.peerDescription() + ": " + e.getMessage());
    }
    head.flip();
    if (head.remaining() == PEEK && head.get(0) == 0x16 && head.get(1) == 0x03 && head.get(2) <= 0x04) {
      drainRecord(raw);
      raw.close();
      throw new RefusedException(
          raw.peerDescription() + " started a TLS handshake, but this destination has no tls-creds");
    }
    return new Replay(head, raw);
  }

  /**
   * Reads the rest of the ClientHello record (its length, then at most that many bytes), so that
   * closing sends the client an orderly end of stream rather than a reset that hides the reason.
   */
  private static void drainRecord(MigrationChannel raw) {
    try {
      ByteBuffer len = ByteBuffer.allocate(2);
      while (len.hasRemaining() && raw.read(len) >= 0) {}
      if (len.hasRemaining()) {
        return;
      }
      ByteBuffer body = ByteBuffer.allocate(Math.min(len.getShort(0) & 0xffff, 16 << 10));
      while (body.hasRemaining() && raw.read(body) >= 0) {}
    } catch (IOException e) {
      // the peer went away: nothing to be orderly about
    }
  }

  /**
   * The channel with the bytes already read put back in front. Scattering like the channel it
   * wraps (tcp and unix are), so the stream's page bodies and multifd packets can still be read
   * straight into guest RAM through it.
   */
  private static final class Replay extends ForwardingMigrationChannel implements ScatteringByteChannel {
    private final ByteBuffer head;

    Replay(ByteBuffer head, MigrationChannel raw) {
      super(raw);
      this.head = head;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      if (head.hasRemaining()) {
        int n = Math.min(head.remaining(), dst.remaining());
        dst.put(head.slice(head.position(), n));
        head.position(head.position() + n);
        return n;
      }
      return raw.read(dst);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
      Objects.checkFromIndexSize(offset, length, dsts.length);
      if (head.hasRemaining()) {
        long n = 0; // the replayed bytes alone: a short read, as any channel may return
        for (int i = offset; i < offset + length && head.hasRemaining(); i++) {
          n += read(dsts[i]);
        }
        return n;
      }
      if (raw instanceof ScatteringByteChannel s) {
        return s.read(dsts, offset, length);
      }
      for (int i = offset; i < offset + length; i++) {
        if (dsts[i].hasRemaining()) {
          return raw.read(dsts[i]);
        }
      }
      return 0;
    }

    @Override
    public long read(ByteBuffer[] dsts) throws IOException {
      return read(dsts, 0, dsts.length);
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return raw.write(src);
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
      return raw.write(srcs, offset, length);
    }
  }
}
