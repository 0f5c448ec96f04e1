package dev.ferry.kv;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A minimal blocking RESP2 client for tests: sends commands as multibulk, decodes replies. */
public final class RespTestClient implements AutoCloseable {
  /** An error reply. */
  public record Err(String message) {}

  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;

  public RespTestClient(int port) throws IOException {
    socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
    socket.setSoTimeout(60_000);
    socket.setTcpNoDelay(true);
    in = new BufferedInputStream(socket.getInputStream());
    out = socket.getOutputStream();
  }

  /** Sends one command and returns its reply: String (status), Err, Long, byte[] (bulk; null for nil), List. */
  public Object call(Object... args) throws IOException {
    send(args);
    return read();
  }

  /** {@link #call} with the reply as a string (bulk and status as text, Err as "-message", integers in decimal). */
  public String callText(Object... args) throws IOException {
    return text(call(args));
  }

  public static String text(Object reply) {
    return switch (reply) {
      case null -> null;
      case byte[] b -> new String(b, StandardCharsets.UTF_8);
      case Err e -> "-" + e.message();
      default -> reply.toString();
    };
  }

  public void send(Object... args) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.writeBytes(("*" + args.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
    for (Object a : args) {
      byte[] v = a instanceof byte[] bytes ? bytes : a.toString().getBytes(StandardCharsets.UTF_8);
      b.writeBytes(("$" + v.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
      b.writeBytes(v);
      b.writeBytes(new byte[] {'\r', '\n'});
    }
    sendRaw(b.toByteArray());
  }

  public void sendRaw(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  /** Reads one reply. */
  public Object read() throws IOException {
    int type = in.read();
    if (type < 0) {
      throw new IOException("connection closed by the server");
    }
    String line = line();
    return switch (type) {
      case '+' -> line;
      case '-' -> new Err(line);
      case ':' -> Long.parseLong(line);
      case '$' -> {
        int n = Integer.parseInt(line);
        if (n < 0) {
          yield null;
        }
        byte[] v = in.readNBytes(n);
        if (v.length != n || in.read() != '\r' || in.read() != '\n') {
          throw new IOException("bad bulk reply");
        }
        yield v;
      }
      case '*' -> {
        int n = Integer.parseInt(line);
        if (n < 0) {
          yield null;
        }
        List<Object> list = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          list.add(read());
        }
        yield list;
      }
      default -> throw new IOException("bad reply type '" + (char) type + "'");
    };
  }

  private String line() throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int c;
    while ((c = in.read()) != '\r') {
      if (c < 0) {
        throw new IOException("connection closed by the server");
      }
      b.write(c);
    }
    if (in.read() != '\n') {
      throw new IOException("CR without LF");
    }
    return b.toString(StandardCharsets.UTF_8);
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
