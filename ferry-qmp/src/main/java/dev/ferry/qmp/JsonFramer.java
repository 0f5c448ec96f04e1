package dev.ferry.qmp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * Cuts a byte stream into JSON texts, like QEMU's JSON streamer: it counts braces and brackets
 * outside strings, so several messages in one read and one message split over many reads both work,
 * and newlines mean nothing. A top-level scalar ends at whitespace or at the next '{'/'['.
 *
 * <p>Framing errors (a closing bracket with nothing open, nesting deeper than {@link
 * QmpJson#MAX_NESTING}, a message longer than {@code maxMessageBytes}) are reported through {@link
 * Sink#error} and the framer starts afresh with the next byte, so the connection stays usable.
 */
final class JsonFramer {
  /** Receives complete texts and framing errors. */
  interface Sink {
    void message(byte[] json);

    void error(String reason);
  }

  private final int maxMessageBytes;
  private final Sink sink;
  private final ByteArrayOutputStream buf = new ByteArrayOutputStream(256);
  private int depth;
  private boolean inString;
  private boolean escape;
  private boolean inScalar;
  private boolean discarding;

  JsonFramer(int maxMessageBytes, Sink sink) {
    if (maxMessageBytes < 2) {
      throw new IllegalArgumentException("maxMessageBytes " + maxMessageBytes);
    }
    this.maxMessageBytes = maxMessageBytes;
    this.sink = sink;
  }

  /** Convenience for tests: a sink from two lambdas. */
  static Sink sink(Consumer<byte[]> messages, Consumer<String> errors) {
    return new Sink() {
      @Override
      public void message(byte[] json) {
        messages.accept(json);
      }

      @Override
      public void error(String reason) {
        errors.accept(reason);
      }
    };
  }

  /** Feeds every remaining byte of {@code in}. */
  void feed(ByteBuffer in) {
    while (in.hasRemaining()) {
      feed(in.get());
    }
  }

  void feed(byte b) {
    if (discarding) {
      // after an oversized message: skip to the next line end, where QMP clients end messages
      if (b == '\n') {
        discarding = false;
      }
      return;
    }
    if (depth == 0 && !inString) {
      boolean ws = b == ' ' || b == '\t' || b == '\r' || b == '\n';
      if (inScalar && (ws || b == '{' || b == '[')) {
        inScalar = false;
        emit();
      }
      if (ws) {
        return;
      }
      if (b == '}' || b == ']') {
        sink.error("expecting value");
        return;
      }
      if (b == '{' || b == '[') {
        depth = 1;
        buf.write(b);
        return;
      }
      inScalar = true;
      append(b);
      return;
    }
    append(b);
    if (inString) {
      if (escape) {
        escape = false;
      } else if (b == '\\') {
        escape = true;
      } else if (b == '"') {
        inString = false;
      }
      return;
    }
    if (inScalar) {
      return;
    }
    switch (b) {
      case '"' -> inString = true;
      case '{', '[' -> {
        if (++depth > QmpJson.MAX_NESTING) {
          reset();
          sink.error("nesting too deep");
          discarding = true;
        }
      }
      case '}', ']' -> {
        if (--depth == 0) {
          emit();
        }
      }
      default -> {}
    }
  }

  private void append(byte b) {
    if (buf.size() >= maxMessageBytes) {
      reset();
      sink.error("message longer than " + maxMessageBytes + " bytes");
      discarding = true;
      return;
    }
    buf.write(b);
  }

  private void emit() {
    byte[] msg = buf.toByteArray();
    reset();
    sink.message(msg);
  }

  private void reset() {
    buf.reset();
    depth = 0;
    inString = false;
    escape = false;
    inScalar = false;
  }

  /** Whether a message has started but not ended. */
  boolean hasPartial() {
    return buf.size() > 0;
  }
}
