package dev.ferry.cli.soak;

import dev.ferry.transport.MigrationUri;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A man in the middle of one migration connection, in this process: it listens where the source
 * will connect (loopback tcp port 0, or a unix socket), connects to the real destination when the
 * source arrives, and forwards both directions (the stream one way, the return path the other) —
 * until {@code cutAfterBytes} bytes of the stream have gone through. Then it closes both
 * connections at once, as a broken link or a dead middlebox would, and the two ends have to notice
 * by themselves. A stream shorter than the cut point goes through whole.
 *
 * <p>The stream is forwarded exactly up to the cut (a partial last read is trimmed), so the
 * destination has received precisely {@link #forwardedBytes} bytes: a cut at byte N is the same cut
 * on every replay of the seed, whatever the timing.
 */
final class CutProxy implements AutoCloseable {
  private static final int BUFFER_BYTES = 256 << 10;

  private final ServerSocketChannel server;
  private final SocketAddress target;
  private final String listenUri;
  private volatile long cutAfterBytes;
  private final AtomicLong forwarded = new AtomicLong();
  private final AtomicLong returned = new AtomicLong();
  private final AtomicBoolean cut = new AtomicBoolean();
  private final AtomicBoolean sourceEof = new AtomicBoolean();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Thread acceptor;
  private volatile SocketChannel fromSource;
  private volatile SocketChannel toDestination;

  private CutProxy(ServerSocketChannel server, SocketAddress target, String listenUri, long cutAfterBytes) {
    this.server = server;
    this.target = target;
    this.listenUri = listenUri;
    this.cutAfterBytes = cutAfterBytes;
    this.acceptor = Thread.ofPlatform().name("soak-proxy-accept").daemon().unstarted(this::acceptOne);
  }

  /**
   * Starts a proxy in front of {@code targetUri} ({@code tcp:} or {@code unix:}); a unix proxy
   * listens on {@code unixPath}.
   */
  static CutProxy start(String targetUri, Path unixPath, long cutAfterBytes) throws IOException {
    MigrationUri u = MigrationUri.parse(targetUri);
    ServerSocketChannel s;
    SocketAddress target;
    String listen;
    switch (u) {
      case MigrationUri.Tcp t -> {
        target = new InetSocketAddress(t.host(), t.port());
        s = ServerSocketChannel.open();
        s.bind(new InetSocketAddress("127.0.0.1", 0));
        listen = "tcp:127.0.0.1:" + ((InetSocketAddress) s.getLocalAddress()).getPort();
      }
      case MigrationUri.Unix x -> {
        target = UnixDomainSocketAddress.of(x.path());
        Files.deleteIfExists(unixPath);
        s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(unixPath));
        listen = "unix:" + unixPath;
      }
      default -> throw new IllegalArgumentException("the cut proxy forwards tcp: and unix: only, not " + targetUri);
    }
    CutProxy p = new CutProxy(s, target, listen, cutAfterBytes);
    p.acceptor.start();
    return p;
  }

  /** Where the source should migrate to. */
  String listenUri() {
    return listenUri;
  }

  long cutAfterBytes() {
    return cutAfterBytes;
  }

  /**
   * Moves the cut to {@code bytes} of the stream (at least what went through already): a test that
   * waits for a phase (e.g. the destination's postcopy RUN) then cuts a seeded number of bytes later.
   */
  void cutAfter(long bytes) {
    cutAfterBytes = Math.max(bytes, forwarded.get());
  }

  /**
   * Holds the return path (destination to source) while {@code hold}: its bytes wait in the
   * sockets' buffers, as behind a stalled link; releasing passes them on in order.
   */
  void holdReturn(boolean hold) {
    holdReturn = hold;
  }

  private volatile boolean holdReturn;

  /** Stream bytes the destination has been sent. */
  long forwardedBytes() {
    return forwarded.get();
  }

  /** Return-path bytes the source has been sent. */
  long returnedBytes() {
    return returned.get();
  }

  /** Did the cut happen? */
  boolean cut() {
    return cut.get();
  }

  /** Did the source end its stream (EOF) before any cut: the destination got the whole stream? */
  boolean sourceEof() {
    return sourceEof.get();
  }

  private void acceptOne() {
    try {
      SocketChannel src = server.accept();
      fromSource = src;
      SocketChannel dst = SocketChannel.open(target);
      toDestination = dst;
      if (closed.get()) {
        closeBoth();
        return;
      }
      Thread.ofPlatform().name("soak-proxy-return").daemon().start(() -> pumpReturn(dst, src));
      pumpStream(src, dst);
    } catch (IOException e) {
      closeBoth(); // closed under us, or the destination is gone: the source sees the failure
    }
  }

  /** Source to destination, cut after {@link #cutAfterBytes}. */
  private void pumpStream(SocketChannel in, SocketChannel out) {
    ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES);
    try {
      while (true) {
        long room = cutAfterBytes - forwarded.get();
        if (room <= 0) {
          cut.set(true);
          closeBoth();
          return;
        }
        buf.clear();
        buf.limit((int) Math.min(buf.capacity(), room));
        int n = in.read(buf);
        if (n < 0) {
          sourceEof.set(true);
          out.shutdownOutput(); // pass the EOF on; the return path stays open until its own EOF
          return;
        }
        buf.flip();
        long allowed = cutAfterBytes - forwarded.get(); // the cut may have moved during the read
        if (n > allowed) {
          n = (int) Math.max(0, allowed);
          buf.limit(n);
        }
        while (buf.hasRemaining()) {
          out.write(buf);
        }
        forwarded.addAndGet(n);
      }
    } catch (IOException e) {
      closeBoth();
    }
  }

  /** Destination to source (the return path), never cut by itself. */
  private void pumpReturn(SocketChannel in, SocketChannel out) {
    ByteBuffer buf = ByteBuffer.allocateDirect(64 << 10);
    try {
      while (true) {
        while (holdReturn && !closed.get()) {
          Thread.sleep(2);
        }
        buf.clear();
        int n = in.read(buf);
        if (n < 0) {
          out.shutdownOutput();
          return;
        }
        buf.flip();
        while (buf.hasRemaining()) {
          out.write(buf);
        }
        returned.addAndGet(n);
      }
    } catch (IOException e) {
      closeBoth();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      closeBoth();
    }
  }

  private void closeBoth() {
    for (SocketChannel c : new SocketChannel[] {fromSource, toDestination}) {
      if (c != null) {
        try {
          c.close();
        } catch (IOException e) {
          // closing is the point; nothing more to do
        }
      }
    }
  }

  @Override
  public void close() {
    closed.set(true);
    try {
      server.close();
    } catch (IOException e) {
      // best effort
    }
    closeBoth();
    if (listenUri.startsWith("unix:")) {
      try {
        Files.deleteIfExists(Path.of(listenUri.substring("unix:".length())));
      } catch (IOException e) {
        // a stale socket file in the run's temp dir goes with the dir
      }
    }
  }
}
