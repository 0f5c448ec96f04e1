package dev.ferry.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.qapi.VersionInfo;
import dev.ferry.transport.TlsChannel;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.Transports;
import java.net.InetSocketAddress;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * A QMP client for {@code unix:PATH} and {@code tcp:HOST:PORT} monitors (Ferry's or QEMU's): reads
 * the greeting, negotiates capabilities, runs commands (several threads may call {@link #execute} at
 * once; replies are matched by id) and collects events in a queue and/or hands them to a listener.
 */
public final class QmpClient implements AutoCloseable {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  private final ByteChannel ch;
  private final Map<Long, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
  private final BlockingQueue<JsonNode> events = new LinkedBlockingQueue<>();
  private final AtomicLong nextId = new AtomicLong(1);
  private final CompletableFuture<JsonNode> greeting = new CompletableFuture<>();
  private final Object writeLock = new Object();
  private volatile Consumer<JsonNode> listener;
  private volatile IOException failure;

  private QmpClient(ByteChannel ch) {
    this.ch = ch;
  }

  /** Connects, reads the greeting and sends {@code qmp_capabilities}. */
  public static QmpClient connect(String uri) throws IOException {
    return connect(uri, null);
  }

  /**
   * Connects to a monitor, inside TLS when {@code creds} (endpoint client) are given: the server's
   * certificate must chain to their CA and carry the host of {@code uri}.
   *
   * @throws dev.ferry.transport.TlsHandshakeException when the handshake fails (one line, why)
   */
  public static QmpClient connect(String uri, TlsCredentials creds) throws IOException {
    QmpEndpoint ep = QmpEndpoint.parse(uri);
    if (creds != null && !(ep.address() instanceof InetSocketAddress)) {
      throw new IOException("TLS is for tcp monitors, not " + uri);
    }
    SocketChannel sock = ep.connect();
    ByteChannel ch = sock;
    if (creds != null) {
      String host = uri.substring("tcp:".length(), uri.lastIndexOf(':'));
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      ch = TlsChannel.client(Transports.socket(sock, uri), creds, creds.verifyPeer() ? host : null);
    }
    QmpClient c = new QmpClient(ch);
    // A platform thread, not a virtual one: reading through the virtual-thread poller leaves a
    // poller thread waiting in native code, and the JVM's exit waits up to 300 ms for such threads,
    // which a one-command `ferry monitor` paid every time. Closing the channel ends this one.
    Thread.ofPlatform().daemon().name("qmp-client-read").start(c::readLoop);
    try {
      c.greeting.get(30, TimeUnit.SECONDS);
      c.execute(QmpDispatcher.QMP_CAPABILITIES);
    } catch (QmpError e) {
      c.close();
      throw new IOException("capability negotiation failed: " + e.getMessage(), e);
    } catch (Exception e) {
      c.close();
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      throw new IOException("no QMP greeting from " + uri + ": " + e, e);
    }
    return c;
  }

  /** The server's version from its greeting. */
  public VersionInfo serverVersion() {
    return VersionInfo.fromJson(greeting.join().path("QMP").path("version"));
  }

  /** Runs a command without arguments. */
  public JsonNode execute(String command) throws IOException, QmpError {
    return execute(command, null);
  }

  /**
   * Runs {@code command} and returns its {@code return} value; an {@code error} answer is thrown as
   * {@link QmpError}; a lost connection as IOException.
   */
  public JsonNode execute(String command, ObjectNode arguments) throws IOException, QmpError {
    long id = nextId.getAndIncrement();
    ObjectNode req = F.objectNode();
    req.put("execute", command);
    if (arguments != null) {
      req.set("arguments", arguments);
    }
    req.put("id", id);
    CompletableFuture<JsonNode> f = new CompletableFuture<>();
    pending.put(id, f);
    if (failure != null) {
      pending.remove(id);
      throw failure;
    }
    byte[] bytes = (QmpJson.write(req) + "\r\n").getBytes(StandardCharsets.US_ASCII);
    synchronized (writeLock) {
      ByteBuffer b = ByteBuffer.wrap(bytes);
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
    JsonNode rsp;
    try {
      rsp = f.get();
    } catch (InterruptedException e) {
      pending.remove(id);
      Thread.currentThread().interrupt();
      throw new IOException("interrupted waiting for " + command, e);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
    }
    if (rsp.has("error")) {
      JsonNode err = rsp.get("error");
      throw new QmpError(
          QmpErrorClass.fromWireName(err.path("class").asText()), err.path("desc").asText());
    }
    return rsp.get("return");
  }

  /**
   * Sends {@code request} (a QMP command object as a user typed it) and returns the server's whole
   * answer, {@code {"return": ...}} or {@code {"error": ...}}. The request goes out unchanged except
   * for the {@code id}, which this client sets to match the answer; the user's {@code id} (if any)
   * is put back into the answer.
   */
  public ObjectNode executeRaw(ObjectNode request) throws IOException {
    JsonNode userId = request.get("id");
    long id = nextId.getAndIncrement();
    ObjectNode req = request.deepCopy();
    req.put("id", id);
    CompletableFuture<JsonNode> f = new CompletableFuture<>();
    pending.put(id, f);
    if (failure != null) {
      pending.remove(id);
      throw failure;
    }
    byte[] bytes = (QmpJson.write(req) + "\r\n").getBytes(StandardCharsets.UTF_8);
    synchronized (writeLock) {
      ByteBuffer b = ByteBuffer.wrap(bytes);
      while (b.hasRemaining()) {
        ch.write(b);
      }
    }
    JsonNode rsp;
    try {
      rsp = f.get();
    } catch (InterruptedException e) {
      pending.remove(id);
      Thread.currentThread().interrupt();
      throw new IOException("interrupted waiting for the answer", e);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
    }
    ObjectNode answer = ((ObjectNode) rsp).deepCopy();
    answer.remove("id");
    if (userId != null) {
      answer.set("id", userId);
    }
    return answer;
  }

  /**
   * Parses a line a user typed as a QMP command object (with QMP's own JSON rules).
   *
   * @throws IOException when it is not one JSON object
   */
  public static ObjectNode parseRequest(String line) throws IOException {
    JsonNode n;
    try {
      n = QmpJson.parse(line.getBytes(StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new IOException("not a JSON object: " + e.getOriginalMessage());
    }
    if (!(n instanceof ObjectNode o)) {
      throw new IOException("not a JSON object: " + line.strip());
    }
    return o;
  }

  /** A QMP message as QMP writes it (one line). */
  public static String format(JsonNode message) {
    return QmpJson.write(message);
  }

  /** Runs an HMP command line through {@code human-monitor-command}; returns its output. */
  public String hmp(String commandLine) throws IOException, QmpError {
    return execute("human-monitor-command", F.objectNode().put("command-line", commandLine))
        .asText();
  }

  /** Events received and not yet taken, oldest first. */
  public BlockingQueue<JsonNode> events() {
    return events;
  }

  /** Takes the next event named {@code name} (skipping others), or null on timeout. */
  public JsonNode awaitEvent(String name, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (true) {
      long left = end - System.nanoTime();
      JsonNode e = left <= 0 ? null : events.poll(left, TimeUnit.NANOSECONDS);
      if (e == null || e.path("event").asText().equals(name)) {
        return e;
      }
    }
  }

  /** Also hands every event to {@code l}, on the client's reader thread (null: stop). */
  public void setEventListener(Consumer<JsonNode> l) {
    this.listener = l;
  }

  private void readLoop() {
    JsonFramer framer =
        new JsonFramer(
            QmpSession.MAX_MESSAGE_BYTES,
            JsonFramer.sink(this::dispatch, r -> fail(new IOException("bad JSON from server: " + r))));
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    try {
      while (true) {
        buf.clear();
        if (ch.read(buf) < 0) {
          break;
        }
        buf.flip();
        framer.feed(buf);
      }
      fail(new IOException("QMP connection closed by the server"));
    } catch (IOException e) {
      fail(e);
    }
  }

  private void dispatch(byte[] json) {
    JsonNode msg;
    try {
      msg = QmpJson.parse(json);
    } catch (JsonProcessingException e) {
      fail(new IOException("bad JSON from server: " + e.getOriginalMessage()));
      return;
    }
    if (msg.has("QMP")) {
      greeting.complete(msg);
    } else if (msg.has("event")) {
      events.add(msg);
      Consumer<JsonNode> l = listener;
      if (l != null) {
        l.accept(msg);
      }
    } else if (msg.has("id") && msg.get("id").canConvertToLong()) {
      CompletableFuture<JsonNode> f = pending.remove(msg.get("id").asLong());
      if (f != null) {
        f.complete(msg);
      }
    }
  }

  private void fail(IOException e) {
    if (failure == null) {
      failure = e;
    }
    greeting.completeExceptionally(e);
    pending.values().forEach(f -> f.completeExceptionally(e));
    pending.clear();
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }
}
