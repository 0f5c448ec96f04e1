package dev.ferry.qmp;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.transport.Authz;
import dev.ferry.transport.TlsChannel;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.TlsObjects;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import dev.ferry.transport.UnixFdSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A QMP server on {@code unix:PATH} or {@code tcp:HOST:PORT}, following QEMU's QMP specification:
 * greeting, capability negotiation, {@code execute}/{@code return}/{@code error}, and asynchronous
 * events. Any number of clients at once, each served by its own virtual threads (one reads and runs
 * commands in order, one writes); replies and events of a connection go through one writer, so an
 * event never lands inside a reply.
 *
 * <p>The greeting reports QEMU 7.2.0 with package {@code ferry-0.1.0} (see {@link
 * dev.ferry.qmp.qapi.VersionInfo#FERRY}) and no capabilities: Ferry has no out-of-band execution,
 * so {@code exec-oob} is refused as QEMU refuses it when OOB is off.
 */
public final class QmpServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(QmpServer.class);

  private final QmpDispatcher dispatcher;
  /** tcp: the JDK's listener; null for unix. */
  private final ServerSocketChannel listener;
  /** unix: a libc listener whose connections receive SCM_RIGHTS descriptors (getfd); null for tcp. */
  private final UnixFdSocket.Server unixListener;
  private final QmpEndpoint endpoint;
  private final Set<QmpSession> sessions = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private volatile boolean closed;
  /** Non-null: every connection runs a TLS handshake first (tls-creds / tls-authz by id). */
  private volatile TlsObjects tlsObjects;
  private volatile MonitorAddress tls;
  private volatile java.util.function.Consumer<String> refused = m -> LOG.warn("{}", m);

  private QmpServer(QmpDispatcher dispatcher, ServerSocketChannel listener, UnixFdSocket.Server unixListener, QmpEndpoint bound) {
    this.dispatcher = dispatcher;
    this.listener = listener;
    this.unixListener = unixListener;
    this.endpoint = bound;
    // a unix session blocks in native recvmsg, which would pin a virtual thread's carrier
    this.acceptor =
        (unixListener != null ? Thread.ofPlatform().daemon() : Thread.ofVirtual())
            .name("qmp-accept " + bound.uri())
            .unstarted(this::acceptLoop);
  }

  /** Listens on {@code uri} and serves {@code backend}; the backend is given the event sink. */
  public static QmpServer start(String uri, MonitorBackend backend) throws IOException {
    return start(uri, new QmpDispatcher(backend));
  }

  /**
   * Listens on {@code uri} with an existing command table (several servers may share one backend).
   * A stale unix socket file at the path is replaced; a regular file there is an error. A unix
   * monitor takes descriptors passed with SCM_RIGHTS (QMP {@code getfd}), as QEMU's does.
   */
  public static QmpServer start(String uri, QmpDispatcher dispatcher) throws IOException {
    return start(uri, dispatcher, null, null);
  }

  /**
   * Listens as {@code address} says (see {@link MonitorAddress}): with {@code tls-creds}, every
   * client must complete a TLS 1.3 handshake (with a certificate from the CA that {@code tls-authz}
   * allows) before it sees the greeting; the objects are looked up by id at each connection.
   * Refused clients are reported, one line each, to {@link #onRefused}.
   *
   * @throws IllegalArgumentException when {@code tls-creds}/{@code tls-authz} name no such object
   */
  public static QmpServer start(MonitorAddress address, QmpDispatcher dispatcher, TlsObjects objects)
      throws IOException {
    if (address.tlsCreds() != null) {
      objects.credentials(address.tlsCreds(), TlsCredentials.Endpoint.SERVER);
      if (address.tlsAuthz() != null) {
        objects.authz(address.tlsAuthz());
      }
    }
    return start(address.uri(), dispatcher, address.tlsCreds() == null ? null : address, objects);
  }

  private static QmpServer start(String uri, QmpDispatcher dispatcher, MonitorAddress tls, TlsObjects objects)
      throws IOException {
    Objects.requireNonNull(dispatcher, "dispatcher");
    QmpEndpoint ep = QmpEndpoint.parse(uri);
    QmpServer server;
    if (ep.address() instanceof UnixDomainSocketAddress u) {
      Path p = u.getPath();
      if (Files.isRegularFile(p) || Files.isDirectory(p)) {
        throw new IOException("cannot listen on " + uri + ": a file or directory is in the way");
      }
      Files.deleteIfExists(p);
    }
    if (tls == null && ep.address() instanceof UnixDomainSocketAddress u) {
      // a plain unix monitor takes descriptors with SCM_RIGHTS (getfd): libc's recvmsg, not the JDK
      UnixFdSocket.Server l;
      try {
        l = UnixFdSocket.listen(u.getPath());
      } catch (IOException e) {
        throw new IOException("cannot listen on " + uri + ": " + e.getMessage(), e);
      }
      server = new QmpServer(dispatcher, null, l, ep);
    } else {
      ServerSocketChannel ch = ep.listen();
      server = new QmpServer(dispatcher, ch, null, new QmpEndpoint(ch.getLocalAddress()));
    }
    server.tls = tls;
    server.tlsObjects = objects;
    dispatcher.backend().attach(server::emit);
    server.acceptor.start();
    LOG.info("QMP monitor listening on {}{}", server.uri(), tls != null ? " (TLS)" : "");
    return server;
  }

  /** Where refused clients (failed TLS handshakes) are reported, one line each; default: the log. */
  public void onRefused(java.util.function.Consumer<String> listener) {
    refused = Objects.requireNonNull(listener, "listener");
  }

  /** Whether clients must speak TLS. */
  public boolean tls() {
    return tls != null;
  }

  /**
   * The TLS side of a new client connection, run on the session's own thread (a slow client holds
   * up nobody); null when the client was refused (reported, connection closed).
   */
  java.nio.channels.ByteChannel secure(SocketChannel ch) {
    MonitorAddress t = tls;
    if (t == null) {
      return ch;
    }
    String peer;
    try {
      peer = new QmpEndpoint(ch.getRemoteAddress()).uri();
    } catch (IOException e) {
      peer = "a client of " + endpoint.uri();
    }
    try {
      TlsCredentials creds = tlsObjects.credentials(t.tlsCreds(), TlsCredentials.Endpoint.SERVER);
      Authz authz = t.tlsAuthz() == null ? null : tlsObjects.authz(t.tlsAuthz());
      return TlsChannel.server(Transports.socket(ch, peer), creds, authz);
    } catch (IOException | IllegalArgumentException e) {
      try {
        ch.close();
      } catch (IOException ignored) {
        // already refused
      }
      refused.accept("QMP monitor " + endpoint.uri() + ": refused " + peer + ": " + e.getMessage());
      return null;
    }
  }

  /** The address actually bound (a tcp port 0 resolved to the real port). */
  public String uri() {
    return endpoint.uri();
  }

  public QmpDispatcher dispatcher() {
    return dispatcher;
  }

  /** The sink that sends events to every client that finished negotiation. */
  public MonitorEventSink events() {
    return this::emit;
  }

  /** Clients connected now. */
  public int clientCount() {
    return sessions.size();
  }

  private void emit(MonitorEvent event) {
    Instant now = Instant.now();
    ObjectNode msg = JsonNodeFactory.instance.objectNode();
    ObjectNode ts = msg.putObject("timestamp");
    ts.put("seconds", now.getEpochSecond());
    ts.put("microseconds", now.getNano() / 1000);
    msg.put("event", event.name());
    if (event.data() != null) {
      msg.set("data", event.data());
    }
    byte[] bytes = QmpSession.frame(msg);
    for (QmpSession s : sessions) {
      s.sendEvent(bytes);
    }
  }

  private void acceptLoop() {
    while (!closed) {
      QmpSession s;
      try {
        if (unixListener != null) {
          UnixFdSocket ch = unixListener.accept();
          s = new QmpSession(this, ch, ch::takeReceivedFd, ch::shutdown);
        } else {
          SocketChannel ch = listener.accept();
          s = new QmpSession(this, ch, null, null);
        }
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          LOG.warn("QMP accept on {} failed: {}", endpoint.uri(), e.toString());
        }
        return;
      }
      sessions.add(s);
      s.start();
    }
  }

  void removed(QmpSession s) {
    sessions.remove(s);
  }

  /** Stops listening, disconnects every client and removes the unix socket file. */
  @Override
  public void close() throws IOException {
    closed = true;
    if (listener != null) {
      listener.close();
    } else {
      unixListener.close();
    }
    for (QmpSession s : sessions) {
      s.close();
    }
    if (endpoint.address() instanceof UnixDomainSocketAddress u) {
      Files.deleteIfExists(u.getPath());
    }
    try {
      acceptor.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
