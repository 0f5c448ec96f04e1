package dev.ferry.kv.resp;

import java.util.List;

/** One request read off a connection: a command with its arguments, or a protocol error. */
public sealed interface RespRequest {
  /** A command: {@code args.get(0)} is its name; arguments are raw bytes (binary safe). */
  record Command(List<byte[]> args) implements RespRequest {
    public Command {
      args = List.copyOf(args);
      if (args.isEmpty()) {
        throw new IllegalArgumentException("a command has at least its name");
      }
    }

    /** The command name in lower case (names are ASCII). */
    public String name() {
      return new String(args.getFirst(), java.nio.charset.StandardCharsets.ISO_8859_1).toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * Input that is not RESP: {@code message} is Redis's text for it ({@code Protocol error: invalid
   * bulk length}, ...), sent back as {@code -ERR message}. The reader has already skipped the bad
   * request, so the connection goes on with the next one.
   */
  record ProtocolError(String message) implements RespRequest {}
}
