package dev.ferry.transport;

import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link MigrationChannel} inside TLS 1.3 (JSSE's {@link SSLEngine} over another channel, QEMU's
 * {@code qio_channel_tls}): the main stream, the return path (the same channel read from a second
 * thread: wrap and unwrap run under separate locks, as {@code SSLEngine} allows) and a QMP session
 * all go through it unchanged. Only TLS 1.3 is offered; the cipher suites are the JDK's defaults
 * (AES-GCM first).
 *
 * <p>{@link #client} and {@link #server} run the handshake before returning, under a deadline
 * ({@link #HANDSHAKE_TIMEOUT}; a stalled or babbling peer is cut off), and throw a {@link
 * TlsHandshakeException} with one line naming the peer and the reason, having sent the peer the
 * matching TLS alert and closed the channel. A client also waits for the server's first
 * post-handshake record (TLS 1.3 servers send a session ticket once they accepted the client's
 * certificate), so that a refusal of its certificate (wrong CA, expired, not in {@code tls-authz})
 * fails the handshake on both sides, before any application byte is sent.
 *
 * <p>{@link #shutdown()} shuts the channel under it down (wakes blocked readers and writers); {@link
 * #close()} sends {@code close_notify} when the session is still healthy, then closes.
 */
public final class TlsChannel extends ForwardingMigrationChannel {
  private static final Logger LOG = LoggerFactory.getLogger(TlsChannel.class);
  /** How long a handshake may take ({@code ferry.tls.handshakeTimeoutMs}, default 10 s). */
  public static final Duration HANDSHAKE_TIMEOUT =
      Duration.ofMillis(Long.getLong("ferry.tls.handshakeTimeoutMs", 10_000));
  private static final String[] PROTOCOLS = {"TLSv1.3"};
  /** Records wrapped into one socket write (fewer, larger writes; a record is at most ~16 KiB). */
  private static final int RECORDS_PER_WRITE = 16;
  private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
  private static final ScheduledExecutorService WATCHDOG =
      Executors.newSingleThreadScheduledExecutor(
          r -> Thread.ofPlatform().daemon().name("tls-handshake-deadline").unstarted(r));

  private final SSLEngine engine;
  private final boolean clientMode;
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();
  /** Encrypted bytes read and not yet unwrapped (read mode: position..limit). Under readLock. */
  private ByteBuffer netIn;
  /** Decrypted bytes not yet delivered (read mode). Under readLock. */
  private ByteBuffer appIn;
  /** Encrypted bytes to send. Under writeLock. */
  private final ByteBuffer netOut;
  private volatile boolean inboundDone;
  private volatile boolean established;
  private volatile boolean failed;
  private volatile boolean timedOut;

  private TlsChannel(MigrationChannel raw, SSLEngine engine) {
    super(raw);
    this.engine = engine;
    this.clientMode = engine.getUseClientMode();
    SSLSession s = engine.getSession();
    // Heap buffers on purpose: JSSE encrypts and decrypts records in place in these, and the JDK's
    // AES-GCM runs about three times faster on arrays than on direct buffers (measured on this
    // project's machines); the socket's copy to or from its own direct buffer costs far less.
    this.netIn = ByteBuffer.allocate(s.getPacketBufferSize() * RECORDS_PER_WRITE);
    this.netIn.flip();
    this.appIn = ByteBuffer.allocate(s.getApplicationBufferSize());
    this.appIn.flip();
    this.netOut = ByteBuffer.allocate(s.getPacketBufferSize() * RECORDS_PER_WRITE);
  }

  /**
   * Runs the client side of a handshake over {@code raw} with {@code creds} (endpoint client),
   * checking the server's certificate against {@code hostname} (null: no host name check, as when
   * verify-peer is off).
   *
   * @throws TlsHandshakeException one line naming the peer and the reason; {@code raw} is closed
   */
  public static TlsChannel client(MigrationChannel raw, TlsCredentials creds, String hostname) throws IOException {
    Objects.requireNonNull(creds, "creds");
    SSLEngine e;
    try {
      e = context(creds, creds.verifyPeer() ? new TlsPeerCheck(creds.caCertificates(), hostname, null) : TRUST_ALL)
          .createSSLEngine(hostname, -1);
    } catch (GeneralSecurityException ex) {
      closeQuietly(raw);
      throw new TlsHandshakeException("TLS setup for " + raw.peerDescription() + " failed: " + ex.getMessage(), ex);
    }
    e.setUseClientMode(true);
    configure(e);
    return handshake(new TlsChannel(raw, e));
  }

  /**
   * Runs the server side of a handshake over {@code raw} with {@code creds} (endpoint server); with
   * verify-peer on, the client must show a certificate from the CA that {@code authz} (null: anyone)
   * allows.
   *
   * @throws TlsHandshakeException one line naming the peer and the reason; {@code raw} is closed
   */
  public static TlsChannel server(MigrationChannel raw, TlsCredentials creds, Authz authz) throws IOException {
    Objects.requireNonNull(creds, "creds");
    SSLEngine e;
    try {
      e = context(creds, creds.verifyPeer() ? new TlsPeerCheck(creds.caCertificates(), null, authz) : TRUST_ALL)
          .createSSLEngine();
    } catch (GeneralSecurityException ex) {
      closeQuietly(raw);
      throw new TlsHandshakeException("TLS setup for " + raw.peerDescription() + " failed: " + ex.getMessage(), ex);
    }
    e.setUseClientMode(false);
    e.setNeedClientAuth(creds.verifyPeer());
    configure(e);
    return handshake(new TlsChannel(raw, e));
  }

  private static SSLContext context(TlsCredentials creds, TrustManager tm) throws GeneralSecurityException {
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(creds.keyManagers(), new TrustManager[] {tm}, null);
    return ctx;
  }

  /**
   * TLS 1.3's suites, AES-128-GCM first: as strong as migration needs and cheaper per byte than
   * AES-256 (the JDK's default order puts AES-256 first); a peer that offers only the others still
   * gets them. The server's order decides.
   */
  private static final String[] CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"
  };

  private static void configure(SSLEngine e) {
    SSLParameters p = e.getSSLParameters();
    p.setProtocols(PROTOCOLS);
    p.setCipherSuites(CIPHER_SUITES);
    p.setUseCipherSuitesOrder(true);
    e.setSSLParameters(p);
  }

  /** The negotiated cipher suite, e.g. {@code TLS_AES_256_GCM_SHA384}. */
  public String cipherSuite() {
    return engine.getSession().getCipherSuite();
  }

  /** The negotiated protocol ({@code TLSv1.3}). */
  public String protocol() {
    return engine.getSession().getProtocol();
  }

  /** The distinguished name of the peer's certificate, or null when it showed none. */
  public String peerIdentity() {
    try {
      java.security.cert.Certificate[] c = engine.getSession().getPeerCertificates();
      return c.length > 0 && c[0] instanceof X509Certificate x ? TlsPeerCheck.dn(x) : null;
    } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
      return null;
    }
  }

  // ------------------------------------------------------------------ handshake

  private static TlsChannel handshake(TlsChannel t) throws IOException {
    ScheduledFuture<?> deadline =
        WATCHDOG.schedule(
            () -> {
              if (!t.established) {
                t.timedOut = true;
                t.raw.shutdown();
              }
            },
            HANDSHAKE_TIMEOUT.toMillis(),
            TimeUnit.MILLISECONDS);
    try {
      t.runHandshake();
      if (t.clientMode) {
        t.awaitServerAcceptance();
      }
      t.established = true;
      LOG.debug("TLS with {}: {} {}, peer {}", t.raw.peerDescription(), t.protocol(), t.cipherSuite(), t.peerIdentity());
      return t;
    } catch (IOException | RuntimeException e) {
      t.failed = true;
      String reason = t.timedOut ? t.timeoutReason() : t.reason(e);
      closeQuietly(t.raw);
      throw new TlsHandshakeException("TLS handshake with " + t.raw.peerDescription() + " failed: " + reason, e);
    } finally {
      deadline.cancel(false);
    }
  }

  private void runHandshake() throws IOException {
    engine.beginHandshake();
    SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
    while (hs != SSLEngineResult.HandshakeStatus.FINISHED && hs != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
      switch (hs) {
        case NEED_WRAP -> hs = wrapHandshake();
        case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
          SSLEngineResult r = unwrapOnce();
          if (r == null) {
            throw new PeerClosedException();
          }
          hs = r.getHandshakeStatus();
        }
        case NEED_TASK -> {
          runTasks();
          hs = engine.getHandshakeStatus();
        }
        default -> throw new IllegalStateException("handshake status " + hs);
      }
    }
  }

  /** The client's wait for the server's first record after the handshake (see the class comment). */
  private void awaitServerAcceptance() throws IOException {
    readLock.lock();
    try {
      while (true) {
        SSLEngineResult r = unwrapOnce();
        if (r == null) {
          throw new PeerClosedException();
        }
        if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
          throw new PeerClosedException();
        }
        if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
          runTasks();
        }
        if (r.bytesConsumed() > 0 && r.getStatus() == SSLEngineResult.Status.OK) {
          return;
        }
      }
    } finally {
      readLock.unlock();
    }
  }

  private SSLEngineResult.HandshakeStatus wrapHandshake() throws IOException {
    writeLock.lock();
    try {
      netOut.clear();
      SSLEngineResult r;
      try {
        r = engine.wrap(EMPTY, netOut);
      } catch (SSLException e) {
        flushAlert();
        throw e;
      }
      netOut.flip();
      writeFully(netOut);
      if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
        // we sent an alert or close_notify: the engine knows why
        throw new SSLException("the TLS engine closed the session");
      }
      return r.getHandshakeStatus();
    } finally {
      writeLock.unlock();
    }
  }

  /** After the engine raised an error, sends the alert it prepared (best effort). */
  private void flushAlert() {
    if (!writeLock.tryLock()) {
      return;
    }
    try {
      for (int i = 0; i < 4 && !engine.isOutboundDone(); i++) {
        netOut.clear();
        SSLEngineResult r = engine.wrap(EMPTY, netOut);
        netOut.flip();
        if (netOut.hasRemaining()) {
          writeFully(netOut);
        }
        if (r.bytesProduced() == 0) {
          break;
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.debug("could not send the TLS alert to {}: {}", raw.peerDescription(), e.toString());
    } finally {
      writeLock.unlock();
    }
  }

  private void runTasks() {
    Runnable task;
    while ((task = engine.getDelegatedTask()) != null) {
      task.run();
    }
  }

  /** A peer that closed the connection during the handshake. */
  private static final class PeerClosedException extends IOException {
    private static final long serialVersionUID = 1L;

    PeerClosedException() {
      super("the peer closed the connection");
    }
  }

  private String timeoutReason() {
    String after = "timed out after " + HANDSHAKE_TIMEOUT.toMillis() + " ms";
    if (!clientMode && netIn.limit() == 0) {
      return after + ": the client sent nothing (a plain-text client waiting for the server to speak?)";
    }
    return after;
  }

  /** Who the other side is, for messages. */
  private String peerRole() {
    return clientMode ? "server" : "client";
  }

  /** One line saying why the handshake failed. */
  private String reason(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof TlsPeerCheck.Refused r) {
        return r.getMessage();
      }
    }
    if (e instanceof PeerClosedException) {
      return "the " + peerRole() + " closed the connection during the handshake"
          + (clientMode ? " (does it use TLS, with tls-creds?)" : "");
    }
    if (clientMode && String.valueOf(e.getMessage()).contains("Connection reset")) {
      return "the server reset the connection during the handshake (does it use TLS, with tls-creds?)";
    }
    if (e instanceof ChannelShutdownException) {
      return "the connection was shut down";
    }
    String m = String.valueOf(e.getMessage());
    if (e instanceof SSLException) {
      int alert = m.indexOf("Received fatal alert: ");
      if (alert >= 0) {
        return alertReason(m.substring(alert + "Received fatal alert: ".length()).trim());
      }
      if (m.contains("Unsupported or unrecognized SSL message") || m.contains("plaintext connection")) {
        return "the " + peerRole() + " does not speak TLS (" + firstBytes() + ")";
      }
      if (m.contains("Empty client certificate chain") || m.contains("Empty server certificate chain")) {
        return "the " + peerRole() + " presented no certificate";
      }
      if (m.contains("No appropriate protocol") || m.contains("protocol_version")) {
        return "no common protocol: Ferry speaks only TLS 1.3";
      }
    }
    int nl = m.indexOf('\n');
    return nl >= 0 ? m.substring(0, nl) : m;
  }

  /** What a refusing peer's alert means for us (the peer's own message has the details). */
  private String alertReason(String alert) {
    String peer = "the " + peerRole();
    return switch (alert) {
      case "certificate_expired" -> peer + " refused our certificate: it has expired (alert certificate_expired)";
      case "bad_certificate" -> peer + " refused our certificate (alert bad_certificate: not yet valid, or a bad signature)";
      case "certificate_unknown" ->
          peer + " refused our certificate (alert certificate_unknown: "
              + (clientMode
                  ? "not issued by its CA, expired or not yet valid, or not allowed by its tls-authz)"
                  : "not issued by its CA, or not for the host name it expects)");
      case "certificate_required" -> peer + " requires a certificate and we have none (alert certificate_required)";
      case "unknown_ca" -> peer + " does not know the CA of our certificate (alert unknown_ca)";
      case "access_denied" -> peer + " denied access to our certificate's identity (alert access_denied)";
      case "protocol_version" -> peer + " does not speak TLS 1.3 (alert protocol_version)";
      case "handshake_failure" -> peer + " found no common cipher suite or protocol (alert handshake_failure)";
      default -> peer + " ended the handshake (alert " + alert + ")";
    };
  }

  /** The first bytes the peer sent, for "does not speak TLS" (a QEMU stream shows as QEVM). */
  private String firstBytes() {
    ByteBuffer b = netIn.duplicate();
    b.position(0);
    int n = Math.min(4, b.limit());
    if (n >= 4 && b.getInt(0) == 0x5145564D) {
      return "it sent a plain migration stream, 'QEVM'";
    }
    StringBuilder s = new StringBuilder("it sent");
    for (int i = 0; i < n; i++) {
      s.append(String.format(" %02x", b.get(i)));
    }
    return n == 0 ? "it sent nothing" : s.toString();
  }

  // ------------------------------------------------------------------ records

  /**
   * Unwraps one record (reading from the channel as needed) into {@link #appIn}; null at end of
   * stream. Caller holds readLock (or is the handshake, which has the channel alone).
   */
  private SSLEngineResult unwrapOnce() throws IOException {
    while (true) {
      appIn.compact();
      SSLEngineResult r;
      try {
        r = engine.unwrap(netIn, appIn);
      } catch (SSLException e) {
        appIn.flip();
        flushAlert();
        throw e;
      }
      appIn.flip();
      switch (r.getStatus()) {
        case OK, CLOSED -> {
          if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
          }
          return r;
        }
        case BUFFER_UNDERFLOW -> {
          if (netIn.limit() == netIn.capacity() && netIn.position() == 0) {
            ByteBuffer bigger = ByteBuffer.allocate(netIn.capacity() * 2);
            bigger.put(netIn).flip();
            netIn = bigger;
          }
          netIn.compact();
          int n;
          try {
            n = raw.read(netIn);
          } finally {
            netIn.flip();
          }
          if (n < 0) {
            return null;
          }
        }
        case BUFFER_OVERFLOW -> {
          ByteBuffer bigger = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize() + appIn.remaining());
          bigger.put(appIn).flip();
          appIn = bigger;
        }
      }
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    readLock.lock();
    try {
      while (true) {
        if (appIn.hasRemaining()) {
          int n = Math.min(dst.remaining(), appIn.remaining());
          ByteBuffer slice = appIn.slice(appIn.position(), n);
          dst.put(slice);
          appIn.position(appIn.position() + n);
          return n;
        }
        if (inboundDone) {
          return -1;
        }
        if (dst.remaining() == 0) {
          return 0;
        }
        if (dst.remaining() >= engine.getSession().getApplicationBufferSize()) {
          int n = readDirect(dst);
          if (n != 0) {
            return n;
          }
        }
        SSLEngineResult r;
        try {
          r = unwrapOnce();
        } catch (SSLException e) {
          throw new IOException(raw.peerDescription() + ": TLS: " + e.getMessage(), e);
        }
        if (r == null || r.getStatus() == SSLEngineResult.Status.CLOSED) {
          inboundDone = true;
          continue;
        }
        if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
          answerPostHandshake();
        }
      }
    } finally {
      readLock.unlock();
    }
  }

  /**
   * Decrypts straight into a large {@code dst} (no copy through {@link #appIn}), every whole record
   * already read and then, if none was, one read's worth: the bytes delivered, -1 at the end, or 0
   * to fall back to the buffered path. Caller holds readLock.
   */
  private int readDirect(ByteBuffer dst) throws IOException {
    int total = 0;
    int appSize = engine.getSession().getApplicationBufferSize();
    while (dst.remaining() >= appSize) {
      SSLEngineResult r;
      try {
        r = engine.unwrap(netIn, dst);
      } catch (SSLException e) {
        flushAlert();
        throw new IOException(raw.peerDescription() + ": TLS: " + e.getMessage(), e);
      }
      switch (r.getStatus()) {
        case OK -> {
          total += r.bytesProduced();
          if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
          } else if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            answerPostHandshake();
          }
        }
        case BUFFER_UNDERFLOW -> {
          if (total > 0) {
            return total;
          }
          if (netIn.limit() == netIn.capacity() && netIn.position() == 0) {
            return 0; // a record larger than the buffer: the buffered path grows it
          }
          netIn.compact();
          int n;
          try {
            n = raw.read(netIn);
          } finally {
            netIn.flip();
          }
          if (n < 0) {
            inboundDone = true;
            return -1;
          }
        }
        case CLOSED -> {
          inboundDone = true;
          return total > 0 ? total : -1;
        }
        case BUFFER_OVERFLOW -> {
          return total;
        }
      }
    }
    return total;
  }

  /**
   * A post-handshake message wants an answer (a TLS 1.3 KeyUpdate): sent now when no writer is
   * busy, else by the writer's next wrap, which sends pending handshake records first.
   */
  private void answerPostHandshake() throws IOException {
    if (!writeLock.tryLock()) {
      return;
    }
    try {
      netOut.clear();
      engine.wrap(EMPTY, netOut);
      netOut.flip();
      writeFully(netOut);
    } finally {
      writeLock.unlock();
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return (int) write(new ByteBuffer[] {src}, 0, 1);
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    writeLock.lock();
    try {
      long total = 0;
      while (remaining(srcs, offset, length)) {
        netOut.clear();
        int packet = engine.getSession().getPacketBufferSize();
        while (netOut.remaining() >= packet && remaining(srcs, offset, length)) {
          SSLEngineResult r;
          try {
            r = engine.wrap(srcs, offset, length, netOut);
          } catch (SSLException e) {
            throw new IOException(raw.peerDescription() + ": TLS: " + e.getMessage(), e);
          }
          if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
            throw new IOException(raw.peerDescription() + ": TLS session closed");
          }
          if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
          }
          total += r.bytesConsumed();
          if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
            break;
          }
        }
        netOut.flip();
        writeFully(netOut);
      }
      return total;
    } finally {
      writeLock.unlock();
    }
  }

  private static boolean remaining(ByteBuffer[] srcs, int offset, int length) {
    for (int i = offset; i < offset + length; i++) {
      if (srcs[i].hasRemaining()) {
        return true;
      }
    }
    return false;
  }

  private void writeFully(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      raw.write(b);
    }
  }






  /** Sends close_notify (when the session is healthy and no writer is stuck), then closes. */
  @Override
  public void close() throws IOException {
    if (established && !failed && !raw.isShutdown() && raw.isOpen() && writeLock.tryLock()) {
      try {
        engine.closeOutbound();
        netOut.clear();
        engine.wrap(EMPTY, netOut);
        netOut.flip();
        writeFully(netOut);
      } catch (IOException | RuntimeException e) {
        LOG.debug("close_notify to {} not sent: {}", raw.peerDescription(), e.toString());
      } finally {
        writeLock.unlock();
      }
    }
    raw.close();
  }

  private static void closeQuietly(MigrationChannel c) {
    try {
      c.shutdown();
      c.close();
    } catch (IOException | RuntimeException e) {
      LOG.debug("closing {}: {}", c.peerDescription(), e.toString());
    }
  }

  @Override
  public String toString() {
    return "TlsChannel[" + raw.peerDescription() + "]";
  }

  /** verify-peer=off: any certificate is taken (QEMU's semantics; a test setup, never a default). */
  private static final X509ExtendedTrustManager TRUST_ALL =
      new X509ExtendedTrustManager() {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) {}

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) {}

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {}

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {}

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public X509Certificate[] getAcceptedIssuers() {
          return new X509Certificate[0];
        }
      };
}
