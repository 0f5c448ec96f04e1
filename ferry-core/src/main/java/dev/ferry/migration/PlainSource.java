package dev.ferry.migration;

import dev.ferry.transport.ChannelShutdownException;
import dev.ferry.transport.ForwardingMigrationChannel;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The mirror of {@link PlainGate} on a source without TLS (tcp or unix): a destination that
 * requires TLS answers the plain stream with a TLS alert record ({@code 15 03 0x}) and closes, which
 * the source would otherwise see only as a reset or a broken pipe. This channel keeps the first
 * bytes the destination sent (read by the return path, or, when a write fails and nobody read them,
 * by one short read of its own) and, when they are a TLS record, fails with one line naming the
 * reason. A plain destination never sends such bytes: its first return-path message has a small
 * type, and without a return path it sends nothing.
 */
final class PlainSource extends ForwardingMigrationChannel {
  private static final int HEAD = 3;
  /** How long a failed write waits for the peer's first bytes (a reader busy, or its own read). */
  private static final long WAIT_MS = 1_000;

  /** The destination answered with TLS: it requires tls-creds. */
  static final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    RefusedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** The {@link RefusedException} in {@code t}'s causes, or null. */
  static RefusedException refusal(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof RefusedException r) {
        return r;
      }
    }
    return null;
  }

  private final byte[] head = new byte[HEAD];
  /** Bytes of {@link #head} filled. Under this. */
  private int headLen;
  /** A read in progress (the return path's or the probe's). Under this. */
  private boolean reading;

  private PlainSource(MigrationChannel raw) {
    super(raw);
  }

  static MigrationChannel wrap(MigrationChannel raw) {
    return new PlainSource(raw);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    synchronized (this) {
      reading = true;
    }
    int n;
    try {
      int start = dst.position();
      n = raw.read(dst);
      if (n > 0) {
        record(dst, start, n);
      }
    } catch (IOException e) {
      throw tlsAnswer() ? refused(e) : e;
    } finally {
      synchronized (this) {
        reading = false;
        notifyAll();
      }
    }
    if (tlsAnswer()) {
      throw refused(null);
    }
    return n;
  }

  private synchronized void record(ByteBuffer dst, int start, int n) {
    for (int i = 0; i < n && headLen < HEAD; i++) {
      head[headLen++] = dst.get(start + i);
    }
  }

  /** True when the peer's first bytes are a TLS alert record's header. */
  private synchronized boolean tlsAnswer() {
    return headLen == HEAD && head[0] == 0x15 && head[1] == 0x03 && head[2] >= 0 && head[2] <= 0x04;
  }

  private RefusedException refused(Throwable cause) {
    return new RefusedException(
        "destination " + raw.peerDescription()
            + " refused the plain stream: it requires TLS (it answered with a TLS alert); set tls-creds",
        cause);
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    try {
      return raw.write(src);
    } catch (IOException e) {
      throw explain(e);
    }
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    try {
      return raw.write(srcs, offset, length);
    } catch (IOException e) {
      throw explain(e);
    }
  }

  /**
   * A failed write: the peer's first bytes say whether it was a TLS destination. A reader busy (the
   * return path) is given a moment to read them; otherwise one read of our own (the connection is
   * broken, so it returns at once with the bytes queued or the end), bounded by {@link #WAIT_MS}.
   */
  private IOException explain(IOException e) {
    if (e instanceof ChannelShutdownException || raw.isShutdown()) {
      return e;
    }
    long end = System.nanoTime() + WAIT_MS * 1_000_000;
    synchronized (this) {
      try {
        long left;
        while (reading && headLen < HEAD && (left = end - System.nanoTime()) > 0) {
          wait(Math.max(1, left / 1_000_000));
        }
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        return e;
      }
      if (headLen > 0 || reading) { // the peer spoke already (or is being read): no probe
        return tlsAnswer() ? refused(e) : e;
      }
    }
    Thread probe = readInBackground("plain-source-probe", false);
    try {
      probe.join(Math.max(1, (end - System.nanoTime()) / 1_000_000));
    } catch (InterruptedException ie) {
      Thread.currentThread().interrupt();
    }
    return tlsAnswer() ? refused(e) : e;
  }

  /**
   * A virtual thread that reads what the peer sends through {@link #read}, which records a TLS
   * answer: the first {@link #HEAD} bytes only, or everything until the end of the stream when {@code
   * untilEnd}. A read error ends it quietly (a reset, a shutdown: the caller keeps its own error).
   */
  private Thread readInBackground(String name, boolean untilEnd) {
    return Thread.ofVirtual().name(name).start(() -> {
      ByteBuffer b = ByteBuffer.allocate(untilEnd ? 4096 : HEAD);
      try {
        while (read(b) >= 0 && (untilEnd || b.hasRemaining())) {
          if (untilEnd) {
            b.clear();
          }
        }
      } catch (IOException | RuntimeException ignored) {
        // the answer, if it was TLS, is recorded; anything else leaves the caller's outcome as it is
      }
    });
  }

  /**
   * The end of a stream sent without a return path: nothing told the source whether the destination
   * took it. A small stream fits in the socket buffers before the destination has read its first
   * bytes, so a destination that requires TLS (it answers {@code QEVM} with an alert and closes) is
   * not seen by any write. This waits, up to {@code timeoutMs}, for the destination to close the
   * connection (a destination closes it when its load is over) and reads what it sent meanwhile: a
   * TLS alert fails with the reason. The end of the stream, a reset (QEMU's destination does not read
   * the trailing vmdesc, so its close may reset) or the timeout are not evidence of a failure: as
   * QEMU, the migration completes then.
   *
   * @return true when the destination closed the connection within the time
   */
  boolean awaitPeerClose(long timeoutMs) throws RefusedException, InterruptedException {
    Thread reader = readInBackground("plain-source-close", true);
    reader.join(Math.max(1, timeoutMs));
    if (tlsAnswer()) {
      throw refused(null);
    }
    return !reader.isAlive();
  }

  @Override
  public String toString() {
    return "PlainSource[" + raw.peerDescription() + "]";
  }
}
