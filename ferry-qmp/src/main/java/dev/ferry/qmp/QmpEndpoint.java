package dev.ferry.qmp;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * A monitor address: {@code unix:PATH} or {@code tcp:HOST:PORT} ({@code HOST} may be an IPv6
 * literal in brackets; port 0 asks for any free port when listening).
 */
public record QmpEndpoint(SocketAddress address) {

  /** Parses a monitor URI; IllegalArgumentException says what is wrong. */
  public static QmpEndpoint parse(String uri) {
    if (uri.startsWith("unix:")) {
      String path = uri.substring(5);
      if (path.isEmpty()) {
        throw new IllegalArgumentException("unix: URI needs a path: " + uri);
      }
      return new QmpEndpoint(UnixDomainSocketAddress.of(Path.of(path)));
    }
    if (uri.startsWith("tcp:")) {
      String rest = uri.substring(4);
      int colon = rest.lastIndexOf(':');
      if (colon < 0) {
        throw new IllegalArgumentException("tcp: URI needs HOST:PORT: " + uri);
      }
      String host = rest.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      if (host.isEmpty()) {
        host = "0.0.0.0";
      }
      int port;
      try {
        port = Integer.parseInt(rest.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("bad port in " + uri, e);
      }
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port out of range in " + uri);
      }
      return new QmpEndpoint(new InetSocketAddress(host, port));
    }
    throw new IllegalArgumentException(
        "monitor URI must be unix:PATH or tcp:HOST:PORT, got: " + uri);
  }

  /** The URI form, e.g. {@code tcp:127.0.0.1:4444}. */
  public String uri() {
    return switch (address) {
      case UnixDomainSocketAddress u -> "unix:" + u.getPath();
      case InetSocketAddress i -> {
        String h = i.getAddress() != null ? i.getAddress().getHostAddress() : i.getHostString();
        yield "tcp:" + (h.contains(":") ? "[" + h + "]" : h) + ":" + i.getPort();
      }
      default -> address.toString();
    };
  }

  boolean isUnix() {
    return address instanceof UnixDomainSocketAddress;
  }

  ServerSocketChannel listen() throws IOException {
    ServerSocketChannel ch =
        isUnix()
            ? ServerSocketChannel.open(StandardProtocolFamily.UNIX)
            : ServerSocketChannel.open();
    try {
      if (!isUnix()) {
        ch.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
      }
      ch.bind(address);
      return ch;
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  SocketChannel connect() throws IOException {
    return SocketChannel.open(address);
  }
}
