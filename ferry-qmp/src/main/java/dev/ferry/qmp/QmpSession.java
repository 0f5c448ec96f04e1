package dev.ferry.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.OptionalInt;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: a reader thread that frames, parses and runs requests in order, and a
 * writer thread that alone writes to the socket (replies and events, each message whole).
 */
final class QmpSession {
  private static final Logger LOG = LoggerFactory.getLogger(QmpSession.class);
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  /** QEMU refuses tokens over 64 MiB; a monitor message has no business being larger than this. */
  static final int MAX_MESSAGE_BYTES = 16 << 20;
  /** A client that lets this many messages pile up unread is disconnected. */
  static final int MAX_QUEUED = 65_536;

  private record Out(byte[] bytes, CompletableFuture<Void> written) {}

  private static final Out POISON = new Out(new byte[0], null);

  /**
   * The descriptors a client passed with SCM_RIGHTS on this connection (unix monitors), claimed by
   * {@code getfd}; bound while a command of this session runs.
   */
  public interface ReceivedFds {
    /** The oldest unclaimed descriptor, now the caller's; empty when none came. */
    OptionalInt take();
  }

  /** The current command's connection's descriptors ({@code getfd} reads it). */
  static final ScopedValue<ReceivedFds> RECEIVED_FDS = ScopedValue.newInstance();

  private static final ReceivedFds NO_FDS = OptionalInt::empty;

  private final QmpServer server;
  /** The connection: a JDK socket, or a libc unix socket that receives descriptors. */
  private final ByteChannel socket;
  /** The socket, or TLS over it once the handshake is done. */
  private volatile ByteChannel ch;
  private final ReceivedFds fds;
  /** Wakes a reader blocked in the channel before close (unix sockets); null when close does. */
  private final Runnable wakeReader;
  private final LinkedBlockingQueue<Out> out = new LinkedBlockingQueue<>();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final JsonFramer framer;
  private volatile boolean negotiated;

  QmpSession(QmpServer server, ByteChannel ch, ReceivedFds fds, Runnable wakeReader) {
    this.server = server;
    this.socket = ch;
    this.ch = ch;
    this.fds = fds == null ? NO_FDS : fds;
    this.wakeReader = wakeReader;
    this.framer =
        new JsonFramer(
            MAX_MESSAGE_BYTES,
            new JsonFramer.Sink() {
              @Override
              public void message(byte[] json) {
                handle(json);
              }

              @Override
              public void error(String reason) {
                reply(QmpSession.error(QmpError.generic("JSON parse error, " + reason), null));
              }
            });
  }

  /** {@code msg} as bytes with QEMU's line end. */
  static byte[] frame(JsonNode msg) {
    return (QmpJson.write(msg) + "\r\n").getBytes(StandardCharsets.US_ASCII);
  }

  void start() {
    thread("qmp-read")
        .start(
            () -> {
              ByteChannel secured = socket instanceof SocketChannel sc ? server.secure(sc) : socket;
              if (secured == null) {
                close();
                return;
              }
              ch = secured;
              thread("qmp-write").start(this::writeLoop);
              readLoop();
            });
  }

  /** A libc-driven socket blocks in native calls, which would pin a virtual thread's carrier. */
  private Thread.Builder thread(String name) {
    return (wakeReader != null ? Thread.ofPlatform().daemon() : Thread.ofVirtual()).name(name);
  }

  void sendEvent(byte[] bytes) {
    if (negotiated) {
      enqueue(new Out(bytes, null));
    }
  }

  private CompletableFuture<Void> reply(ObjectNode msg) {
    CompletableFuture<Void> f = new CompletableFuture<>();
    enqueue(new Out(frame(msg), f));
    return f;
  }

  private void enqueue(Out o) {
    if (closed.get()) {
      if (o.written() != null) {
        o.written().completeExceptionally(new IOException("connection closed"));
      }
      return;
    }
    if (out.size() >= MAX_QUEUED) {
      LOG.warn("QMP client is not reading; disconnecting it");
      close();
      return;
    }
    out.add(o);
  }

  private void readLoop() {
    try {
      ObjectNode greeting = F.objectNode();
      ObjectNode qmp = greeting.putObject("QMP");
      qmp.set("version", server.dispatcher().backend().version().toJson());
      qmp.putArray("capabilities");
      reply(greeting);
      ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
      while (!closed.get()) {
        buf.clear();
        int n = ch.read(buf);
        if (n < 0) {
          break;
        }
        buf.flip();
        framer.feed(buf);
      }
    } catch (IOException e) {
      LOG.debug("QMP client read ended: {}", e.toString());
    } catch (RuntimeException e) {
      LOG.warn("QMP session failed", e);
    } finally {
      close();
    }
  }

  private void writeLoop() {
    try {
      while (true) {
        Out o = out.take();
        if (o == POISON) {
          break;
        }
        ByteBuffer b = ByteBuffer.wrap(o.bytes());
        while (b.hasRemaining()) {
          ch.write(b);
        }
        if (o.written() != null) {
          o.written().complete(null);
        }
      }
    } catch (IOException e) {
      LOG.debug("QMP client write ended: {}", e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      close();
      for (Out o; (o = out.poll()) != null; ) {
        if (o.written() != null) {
          o.written().completeExceptionally(new IOException("connection closed"));
        }
      }
    }
  }

  void close() {
    if (closed.compareAndSet(false, true)) {
      out.add(POISON);
      if (wakeReader != null) {
        wakeReader.run();
      }
      try {
        socket.close();
        ch.close();
      } catch (IOException e) {
        LOG.debug("closing QMP client: {}", e.toString());
      }
      server.removed(this);
    }
  }

  private static ObjectNode error(QmpError e, JsonNode id) {
    ObjectNode msg = F.objectNode();
    ObjectNode err = msg.putObject("error");
    err.put("class", e.errorClass().wireName());
    err.put("desc", e.desc());
    if (id != null) {
      msg.set("id", id);
    }
    return msg;
  }

  private void handle(byte[] json) {
    JsonNode req;
    try {
      req = QmpJson.parse(json);
    } catch (JsonProcessingException e) {
      reply(error(QmpError.generic("JSON parse error, " + parseReason(e)), null));
      return;
    }
    if (req == null || !req.isObject()) {
      reply(error(QmpError.generic("QMP input must be a JSON object"), null));
      return;
    }
    JsonNode id = req.get("id");
    String command;
    try {
      command = checkRequest((ObjectNode) req);
    } catch (QmpError e) {
      reply(error(e, id));
      return;
    }
    ObjectNode args = (ObjectNode) req.get("arguments");
    try {
      JsonNode result;
      if (!negotiated) {
        if (!command.equals(QmpDispatcher.QMP_CAPABILITIES)) {
          throw new QmpError(
              QmpErrorClass.COMMAND_NOT_FOUND,
              "Expecting capabilities negotiation with 'qmp_capabilities'");
        }
        negotiate(args);
        result = F.objectNode();
      } else {
        String c = command;
        result = ScopedValue.where(RECEIVED_FDS, fds).call(() -> server.dispatcher().execute(c, args));
      }
      ObjectNode msg = F.objectNode();
      msg.set("return", result);
      if (id != null) {
        msg.set("id", id);
      }
      CompletableFuture<Void> written = reply(msg);
      if (command.equals("quit") && negotiated) {
        awaitQuietly(written);
        server.dispatcher().backend().quit();
      }
    } catch (QmpError e) {
      reply(error(e, id));
    } catch (RuntimeException e) {
      LOG.warn("QMP command {} failed", command, e);
      reply(error(QmpError.generic("internal error: " + e), id));
    }
  }

  private void negotiate(ObjectNode args) throws QmpError {
    QapiType.Struct schema =
        QapiType.Struct.of(
            QapiType.Member.optional(
                "enable", new QapiType.Array(new QapiType.Enum(java.util.List.of("oob")))));
    ObjectNode a = args == null ? F.objectNode() : args;
    schema.check(a, "");
    if (a.has("enable") && !a.get("enable").isEmpty()) {
      throw QmpError.generic("Capability oob not available");
    }
    negotiated = true;
  }

  /** QEMU's checks of the request's own members; returns the command name. */
  private static String checkRequest(ObjectNode req) throws QmpError {
    String command = null;
    for (Map.Entry<String, JsonNode> e : req.properties()) {
      switch (e.getKey()) {
        case "execute" -> {
          if (!e.getValue().isTextual()) {
            throw QmpError.generic("QMP input member 'execute' must be a string");
          }
          command = e.getValue().textValue();
        }
        case "arguments" -> {
          if (!e.getValue().isObject()) {
            throw QmpError.generic("QMP input member 'arguments' must be an object");
          }
        }
        case "id" -> {}
        default ->
            // includes exec-oob: this server never enables OOB, so QEMU calls it unexpected
            throw QmpError.generic("QMP input member '" + e.getKey() + "' is unexpected");
      }
    }
    if (command == null) {
      throw QmpError.generic("QMP input lacks member 'execute'");
    }
    return command;
  }

  private static String parseReason(JsonProcessingException e) {
    String m = e.getOriginalMessage();
    if (m == null) {
      return "invalid input";
    }
    int nl = m.indexOf('\n');
    return (nl >= 0 ? m.substring(0, nl) : m).trim();
  }

  private static void awaitQuietly(CompletableFuture<Void> f) {
    try {
      f.get(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      LOG.debug("quit reply not confirmed: {}", e.toString());
    }
  }
}
