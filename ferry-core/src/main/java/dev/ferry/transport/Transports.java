package dev.ferry.transport;

import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ProtocolFamily;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.net.UnknownHostException;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicBoolean;
import jdk.net.ExtendedSocketOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens migration channels from URIs: {@link #connect} for the outgoing side (the source), {@link
 * #listen} for the incoming side (the destination). Every failure to open is an {@link IOException}
 * whose one-line message starts with the URI, e.g. {@code tcp:127.0.0.1:1: cannot connect:
 * Connection refused}.
 *
 * <p>Sockets get {@code TCP_NODELAY} and {@link #SOCKET_BUFFER_BYTES}-byte send and receive buffers
 * (set on the listening socket before bind, so the window scale is negotiated for them).
 */
public final class Transports {
  private static final Logger LOG = LoggerFactory.getLogger(Transports.class);

  /**
   * SO_SNDBUF / SO_RCVBUF for tcp and unix sockets; system property {@code ferry.socketBufferBytes}
   * overrides it, 0 leaving the kernel's defaults (and its TCP buffer autotuning) alone.
   */
  public static final int SOCKET_BUFFER_BYTES =
      Integer.getInteger("ferry.socketBufferBytes", 4 * 1024 * 1024);

  /**
   * How long a tcp connect may take before it fails naming the address (system property {@code
   * ferry.connectTimeoutMs}): an unreachable host whose packets are dropped would otherwise hold
   * the migration in {@code setup} for the kernel's SYN retries (about two minutes).
   */
  public static final int CONNECT_TIMEOUT_MS = Integer.getInteger("ferry.connectTimeoutMs", 10_000);

  /**
   * TCP keepalive on every migration connection, so that a peer that died without a word (host
   * gone, cable cut) is noticed by the side blocked in a read: the first probe after {@value
   * #KEEPALIVE_IDLE_S} s of silence, then every {@value #KEEPALIVE_INTERVAL_S} s, the connection
   * failing after {@value #KEEPALIVE_COUNT} unanswered ones (about 25 s). Precopy streams are never
   * silent that long, and a return path may be (it answers only pings and the final SHUT), so
   * keepalive rather than a read timeout is what watches it.
   */
  static final int KEEPALIVE_IDLE_S = 10;

  static final int KEEPALIVE_INTERVAL_S = 5;
  static final int KEEPALIVE_COUNT = 3;

  private Transports() {}

  /** Parses {@code uri} and opens the outgoing channel. */
  public static MigrationChannel connect(String uri) throws IOException {
    return connect(MigrationUri.parse(uri));
  }

  /** Parses {@code uri} and starts listening (or opens the incoming channel, for exec/fd/file). */
  public static TransportListener listen(String uri) throws IOException {
    return listen(MigrationUri.parse(uri));
  }

  /** Opens the outgoing channel: connects, starts the command, takes the fd or creates the file. */
  public static MigrationChannel connect(MigrationUri uri) throws IOException {
    return switch (uri) {
      case MigrationUri.Tcp t -> connectTcp(t);
      case MigrationUri.Unix u -> connectUnix(u);
      case MigrationUri.Exec e -> ExecMigrationChannel.start(e.command(), true);
      case MigrationUri.Fd f -> openFd(f);
      case MigrationUri.File f -> openFile(f, true);
    };
  }

  /** Starts listening on {@code uri}; for exec, fd and file the channel is opened at once. */
  public static TransportListener listen(MigrationUri uri) throws IOException {
    return listen(uri, 1);
  }

  /**
   * As {@link #listen(MigrationUri)}, a tcp or unix socket with room for {@code backlog} connections
   * not yet accepted (a multifd destination: the main one and its channels arrive back to back, and a
   * full backlog drops a tcp SYN, which costs the source a one-second retransmit).
   */
  public static TransportListener listen(MigrationUri uri, int backlog) throws IOException {
    return switch (uri) {
      case MigrationUri.Tcp t -> listenTcp(t, backlog);
      case MigrationUri.Unix u -> listenUnix(u, backlog);
      case MigrationUri.Exec e -> new OneShotListener(uri, ExecMigrationChannel.start(e.command(), false));
      case MigrationUri.Fd f -> new OneShotListener(uri, openFd(f));
      case MigrationUri.File f -> new OneShotListener(uri, openFile(f, false));
    };
  }

  /** Only a descriptor recorded for the purpose (see {@link MigrationFds}). */
  private static MigrationChannel openFd(MigrationUri.Fd f) throws IOException {
    int fd = MigrationFds.take(f);
    try {
      return new FdMigrationChannel(fd, f.text());
    } catch (IOException | RuntimeException e) {
      MigrationFds.unclaim(f, fd);
      throw e;
    }
  }

  /**
   * A connected tcp or unix socket as a {@link MigrationChannel}, for a layer that goes over it
   * (TLS on a monitor connection); {@code peer} names it in messages.
   */
  public static MigrationChannel socket(SocketChannel ch, String peer) {
    return new SocketMigrationChannel(ch, peer);
  }

  static String describe(IOException e) {
    return switch (e) {
      case NoSuchFileException n -> "no such file or directory";
      case AccessDeniedException a -> "permission denied";
      case UnknownHostException u -> "unknown host";
      default -> e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    };
  }

  private static IOException failed(MigrationUri uri, String what, IOException e) {
    return new IOException(uri.text() + ": " + what + ": " + describe(e), e);
  }

  private static void tune(SocketChannel ch, boolean tcp) throws IOException {
    if (tcp) {
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      ch.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
      if (ch.supportedOptions().contains(ExtendedSocketOptions.TCP_KEEPIDLE)) {
        ch.setOption(ExtendedSocketOptions.TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
        ch.setOption(ExtendedSocketOptions.TCP_KEEPINTERVAL, KEEPALIVE_INTERVAL_S);
        ch.setOption(ExtendedSocketOptions.TCP_KEEPCOUNT, KEEPALIVE_COUNT);
      }
    }
    if (SOCKET_BUFFER_BYTES > 0) {
      ch.setOption(StandardSocketOptions.SO_SNDBUF, SOCKET_BUFFER_BYTES);
      ch.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER_BYTES);
    }
  }

  private static InetSocketAddress resolve(MigrationUri.Tcp t, boolean listening)
      throws IOException {
    if (t.host().isEmpty()) {
      return listening
          ? new InetSocketAddress(t.port())
          : new InetSocketAddress(InetAddress.getLoopbackAddress(), t.port());
    }
    try {
      return new InetSocketAddress(InetAddress.getByName(t.host()), t.port());
    } catch (UnknownHostException e) {
      throw failed(t, "cannot resolve host '" + t.host() + "'", e);
    }
  }

  private static MigrationChannel connectTcp(MigrationUri.Tcp t) throws IOException {
    return connectTcp(t, CONNECT_TIMEOUT_MS);
  }

  /** Connects within {@code timeoutMs}; a time-out fails naming the address and the time. */
  static MigrationChannel connectTcp(MigrationUri.Tcp t, int timeoutMs) throws IOException {
    if (t.port() == 0) {
      throw new IOException(t.text() + ": cannot connect to port 0");
    }
    InetSocketAddress addr = resolve(t, false);
    SocketChannel ch = SocketChannel.open(family(addr));
    try {
      tune(ch, true);
      // the socket adaptor's connect takes a time-out (the channel's own blocking connect does
      // not); the channel stays in blocking mode, as the rest of the transport expects
      ch.socket().connect(addr, timeoutMs);
    } catch (SocketTimeoutException e) {
      ch.close();
      throw new IOException(t.text() + ": cannot connect: no answer within " + timeoutMs + " ms", e);
    } catch (IOException e) {
      ch.close();
      throw failed(t, "cannot connect", e);
    }
    LOG.debug("connected to {}", t.text());
    return new SocketMigrationChannel(ch, t.text());
  }

  private static ProtocolFamily family(InetSocketAddress addr) {
    return addr.getAddress() instanceof Inet6Address
        ? StandardProtocolFamily.INET6
        : StandardProtocolFamily.INET;
  }

  private static MigrationChannel connectUnix(MigrationUri.Unix u) throws IOException {
    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      tune(ch, false);
      ch.connect(UnixDomainSocketAddress.of(u.path()));
    } catch (IOException e) {
      ch.close();
      throw failed(u, "cannot connect", e);
    }
    return new SocketMigrationChannel(ch, u.text());
  }

  private static MigrationChannel openFile(MigrationUri.File f, boolean writing)
      throws IOException {
    try {
      FileChannel ch =
          writing
              ? FileChannel.open(
                  f.path(),
                  StandardOpenOption.WRITE,
                  StandardOpenOption.CREATE,
                  StandardOpenOption.TRUNCATE_EXISTING)
              : FileChannel.open(f.path(), StandardOpenOption.READ);
      return new FileMigrationChannel(ch, f.text(), writing);
    } catch (IOException e) {
      throw failed(f, writing ? "cannot create" : "cannot open", e);
    }
  }

  /** A printable host for a bound address: loopback for a wildcard, {@code ::1} style for IPv6. */
  static String hostOf(InetAddress a) {
    if (a.isAnyLocalAddress()) {
      a = a instanceof Inet6Address ? loopback6() : InetAddress.getLoopbackAddress();
    }
    if (a instanceof Inet6Address) {
      if (a.isLoopbackAddress()) {
        return "::1";
      }
      String h = a.getHostAddress();
      int pct = h.indexOf('%');
      return pct < 0 ? h : h.substring(0, pct);
    }
    return a.getHostAddress();
  }

  private static InetAddress loopback6() {
    try {
      return InetAddress.getByName("::1");
    } catch (UnknownHostException e) {
      throw new AssertionError(e);
    }
  }

  private static TransportListener listenTcp(MigrationUri.Tcp t, int backlog) throws IOException {
    InetSocketAddress addr = resolve(t, true);
    ServerSocketChannel server =
        t.host().isEmpty() ? ServerSocketChannel.open() : ServerSocketChannel.open(family(addr));
    try {
      server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      if (SOCKET_BUFFER_BYTES > 0) {
        server.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER_BYTES);
      }
      server.bind(addr, backlog);
    } catch (IOException e) {
      server.close();
      throw failed(t, "cannot listen", e);
    }
    InetSocketAddress bound = (InetSocketAddress) server.getLocalAddress();
    MigrationUri.Tcp boundUri = new MigrationUri.Tcp(hostOf(bound.getAddress()), bound.getPort());
    LOG.debug("listening on {} (asked for {})", boundUri.text(), t.text());
    return new SocketListener(server, boundUri, null);
  }

  private static TransportListener listenUnix(MigrationUri.Unix u, int backlog) throws IOException {
    Path p = u.path();
    if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
      int mode;
      try {
        mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
      } catch (IOException | UnsupportedOperationException e) {
        mode = 0;
      }
      if ((mode & 0170000) != 0140000) {
        throw new IOException(u.text() + ": cannot listen: the path exists and is not a socket");
      }
      LOG.debug("removing stale socket {}", p);
      Files.deleteIfExists(p);
    }
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      server.bind(UnixDomainSocketAddress.of(p), backlog);
    } catch (IOException e) {
      server.close();
      throw failed(u, "cannot listen", e);
    }
    return new SocketListener(server, u, p);
  }

  /** tcp and unix: a listening socket. */
  private static final class SocketListener implements TransportListener {
    private final ServerSocketChannel server;
    private final MigrationUri boundUri;
    private final Path socketFile;

    SocketListener(ServerSocketChannel server, MigrationUri boundUri, Path socketFile) {
      this.server = server;
      this.boundUri = boundUri;
      this.socketFile = socketFile;
    }

    @Override
    public MigrationUri boundUri() {
      return boundUri;
    }

    @Override
    public MigrationChannel accept() throws IOException {
      SocketChannel ch = server.accept();
      boolean tcp = boundUri instanceof MigrationUri.Tcp;
      try {
        tune(ch, tcp);
      } catch (IOException e) {
        ch.close();
        throw e;
      }
      String peer;
      SocketAddress remote = ch.getRemoteAddress();
      if (remote instanceof InetSocketAddress r) {
        peer = new MigrationUri.Tcp(hostOf(r.getAddress()), r.getPort()).text();
      } else {
        peer = boundUri.text() + " (peer)";
      }
      LOG.debug("{}: accepted {}", boundUri.text(), peer);
      return new SocketMigrationChannel(ch, peer);
    }

    @Override
    public void close() throws IOException {
      try {
        server.close();
      } finally {
        if (socketFile != null) {
          Files.deleteIfExists(socketFile);
        }
      }
    }
  }

  /** exec, fd and file: the channel exists as soon as we "listen"; accept hands it out once. */
  private static final class OneShotListener implements TransportListener {
    private final MigrationUri uri;
    private final MigrationChannel channel;
    private final AtomicBoolean taken = new AtomicBoolean();

    OneShotListener(MigrationUri uri, MigrationChannel channel) {
      this.uri = uri;
      this.channel = channel;
    }

    @Override
    public MigrationUri boundUri() {
      return uri;
    }

    @Override
    public MigrationChannel accept() {
      if (!taken.compareAndSet(false, true)) {
        throw new IllegalStateException(uri.text() + " has only one connection, already accepted");
      }
      return channel;
    }

    /** Closes the channel too if nobody accepted it. */
    @Override
    public void close() throws IOException {
      if (taken.compareAndSet(false, true)) {
        channel.shutdown();
        channel.close();
      }
    }
  }
}
