package dev.ferry.transport;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A migration URI as QEMU spells it: {@code tcp:HOST:PORT}, {@code unix:PATH}, {@code exec:COMMAND},
 * {@code fd:N} or {@code file:PATH}. Parsing is strict and every error is one line naming the URI, so
 * that the CLI and QMP can pass it straight to the user.
 *
 * <p>IPv6 hosts are bracketed ({@code tcp:[::1]:4444}); an empty host ({@code tcp::4444}) means every
 * address when listening and loopback when connecting. Port 0 on the listening side asks for an
 * ephemeral port, reported by {@link TransportListener#boundUri()}.
 */
public sealed interface MigrationUri {

  /** The URI in its canonical text form (what {@link #parse} accepts). */
  String text();

  /** {@code tcp:HOST:PORT}; {@code host} is unbracketed ({@code ::1}), empty for the wildcard. */
  record Tcp(String host, int port) implements MigrationUri {
    public Tcp {
      Objects.requireNonNull(host, "host");
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port out of range: " + port);
      }
    }

    @Override
    public String text() {
      return "tcp:" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** {@code unix:PATH}, a Unix domain stream socket. */
  record Unix(Path path) implements MigrationUri {
    public Unix {
      Objects.requireNonNull(path, "path");
    }

    @Override
    public String text() {
      return "unix:" + path;
    }
  }

  /**
   * {@code exec:COMMAND}, run as {@code /bin/sh -c COMMAND}: outgoing streams go to its stdin,
   * incoming streams come from its stdout.
   */
  record Exec(String command) implements MigrationUri {
    public Exec {
      Objects.requireNonNull(command, "command");
    }

    @Override
    public String text() {
      return "exec:" + command;
    }
  }

  /**
   * {@code fd:N}, a descriptor this process inherited for the purpose, or {@code fd:NAME}, one
   * passed over the monitor with {@code getfd NAME} (then {@code fd} is -1); see {@link
   * MigrationFds}.
   */
  record Fd(int fd, String name) implements MigrationUri {
    public Fd {
      if (name == null && fd < 0) {
        throw new IllegalArgumentException("negative fd: " + fd);
      }
      if (name != null && (fd != -1 || name.isEmpty() || Character.isDigit(name.charAt(0)))) {
        throw new IllegalArgumentException("a named fd has fd -1 and a name not starting with a digit: " + name);
      }
    }

    /** {@code fd:N}. */
    public Fd(int fd) {
      this(fd, null);
    }

    /** {@code fd:NAME}. */
    public static Fd named(String name) {
      return new Fd(-1, name);
    }

    @Override
    public String text() {
      return "fd:" + (name != null ? name : Integer.toString(fd));
    }
  }

  /** {@code file:PATH}: outgoing creates or truncates it, incoming reads it. */
  record File(Path path) implements MigrationUri {
    public File {
      Objects.requireNonNull(path, "path");
    }

    @Override
    public String text() {
      return "file:" + path;
    }
  }

  /**
   * Parses {@code uri}.
   *
   * @throws IllegalArgumentException with a one-line message naming {@code uri}
   */
  static MigrationUri parse(String uri) {
    Objects.requireNonNull(uri, "uri");
    int colon = uri.indexOf(':');
    if (colon < 0) {
      throw bad(uri, "no transport prefix; expected tcp:, unix:, exec:, fd: or file:");
    }
    String scheme = uri.substring(0, colon);
    String rest = uri.substring(colon + 1);
    return switch (scheme) {
      case "tcp" -> parseTcp(uri, rest);
      case "unix" -> {
        if (rest.isEmpty()) {
          throw bad(uri, "empty socket path");
        }
        yield new Unix(Path.of(rest));
      }
      case "exec" -> {
        if (rest.isBlank()) {
          throw bad(uri, "empty command");
        }
        yield new Exec(rest);
      }
      case "fd" -> {
        // as QEMU: a leading digit means a number, anything else a name given with getfd
        if (rest.isEmpty()) {
          throw bad(uri, "empty descriptor number or name");
        }
        if (!Character.isDigit(rest.charAt(0)) && rest.charAt(0) != '-') {
          yield Fd.named(rest);
        }
        int fd;
        try {
          fd = Integer.parseInt(rest);
        } catch (NumberFormatException e) {
          throw bad(uri, "descriptor must be a non-negative number, got '" + rest + "'");
        }
        if (fd < 0) {
          throw bad(uri, "descriptor must be a non-negative number, got '" + rest + "'");
        }
        yield new Fd(fd);
      }
      case "file" -> {
        if (rest.isEmpty()) {
          throw bad(uri, "empty file path");
        }
        yield new File(Path.of(rest));
      }
      default ->
          throw new IllegalArgumentException(
              "unknown transport '"
                  + scheme
                  + "' in '"
                  + uri
                  + "'; expected tcp:, unix:, exec:, fd: or file:");
    };
  }

  private static Tcp parseTcp(String uri, String rest) {
    String host;
    String portText;
    if (rest.startsWith("[")) {
      int close = rest.indexOf(']');
      if (close < 0 || close + 1 >= rest.length() || rest.charAt(close + 1) != ':') {
        throw bad(uri, "expected tcp:[IPV6]:PORT");
      }
      host = rest.substring(1, close);
      portText = rest.substring(close + 2);
    } else {
      int c = rest.lastIndexOf(':');
      if (c < 0) {
        throw bad(uri, "expected tcp:HOST:PORT");
      }
      host = rest.substring(0, c);
      portText = rest.substring(c + 1);
      if (host.indexOf(':') >= 0) {
        throw bad(uri, "an IPv6 address must be bracketed, as in tcp:[::1]:4444");
      }
    }
    int port;
    try {
      port = Integer.parseInt(portText);
    } catch (NumberFormatException e) {
      throw bad(uri, "port must be a number 0..65535, got '" + portText + "'");
    }
    if (port < 0 || port > 65535) {
      throw bad(uri, "port must be a number 0..65535, got '" + portText + "'");
    }
    return new Tcp(host, port);
  }

  private static IllegalArgumentException bad(String uri, String why) {
    return new IllegalArgumentException("bad migration URI '" + uri + "': " + why);
  }
}
