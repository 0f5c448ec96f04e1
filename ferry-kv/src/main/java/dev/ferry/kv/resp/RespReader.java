package dev.ferry.kv.resp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes the requests of one RESP2 connection from bytes fed in pieces of any size (one byte at a
 * time works): multibulk commands ({@code *2\r\n$3\r\nGET\r\n$1\r\nk\r\n}) and inline commands
 * ({@code GET k\r\n}, with Redis's quoting rules), as {@link RespRequest}s.
 *
 * <p>Every length is checked before anything is allocated or buffered: a bulk string longer than
 * {@code maxBulkBytes}, or a request whose bulk strings together exceed {@code maxRequestBytes}, is
 * answered with {@code Protocol error: invalid bulk length} / {@code too big request} at once, and
 * its bytes are then skipped as they arrive, never held. Unlike Redis, which closes the connection
 * after a protocol error, the reader recovers: a request whose framing is intact but whose content is
 * refused (an over-long bulk string) is skipped exactly; after broken framing (a negative or
 * non-numeric length, a missing {@code $}, a bulk string not followed by CRLF) the input is dropped
 * up to the next line that starts with {@code *}, the start of a multibulk request. One error is
 * reported per bad request. Not thread-safe: one reader per connection.
 */
public final class RespReader {
  /** Longest inline request and longest length line (Redis's {@code PROTO_INLINE_MAX_SIZE}). */
  public static final int MAX_LINE_BYTES = 64 * 1024;

  /** Most arguments in one multibulk request. */
  public static final int MAX_MULTIBULK = 1024 * 1024;

  /** Default longest bulk string (Redis's {@code proto-max-bulk-len} is 512 MiB; values here live in guest RAM). */
  public static final int DEFAULT_MAX_BULK_BYTES = 16 << 20;

  /** Default most bytes of bulk strings in one request. */
  public static final long DEFAULT_MAX_REQUEST_BYTES = 64L << 20;

  private final int maxBulkBytes;
  private final long maxRequestBytes;

  private byte[] buf = new byte[16 * 1024];
  private int start;
  private int end;

  /** Arguments the current multibulk request announced; -1 between requests. */
  private int argsExpected = -1;
  private List<byte[]> args;
  private int argsSeen;
  /** Length of the bulk string whose header was read, -1 when the next thing is a header. */
  private long bulkLength = -1;
  private long requestBytes;
  /** The current request was refused (its error already returned): its arguments are skipped. */
  private boolean poisoned;
  /** Bytes still to drop (the payload and CRLF of a refused bulk string). */
  private long skipBytes;
  /** Dropping input up to the next line that starts with '*'. */
  private boolean resync;
  private boolean resyncAtLineStart;
  /** Dropping an over-long inline request up to its newline. */
  private boolean skipLine;

  public RespReader() {
    this(DEFAULT_MAX_BULK_BYTES, DEFAULT_MAX_REQUEST_BYTES);
  }

  public RespReader(int maxBulkBytes, long maxRequestBytes) {
    if (maxBulkBytes < 1 || maxRequestBytes < maxBulkBytes) {
      throw new IllegalArgumentException("need 1 <= maxBulkBytes <= maxRequestBytes: " + maxBulkBytes + ", " + maxRequestBytes);
    }
    this.maxBulkBytes = maxBulkBytes;
    this.maxRequestBytes = maxRequestBytes;
  }

  /** Appends input. */
  public void feed(byte[] src, int offset, int length) {
    ensureRoom(length);
    System.arraycopy(src, offset, buf, end, length);
    end += length;
  }

  public void feed(byte[] src) {
    feed(src, 0, src.length);
  }

  /** Appends the remaining bytes of {@code src} (consuming them). */
  public void feed(ByteBuffer src) {
    int n = src.remaining();
    ensureRoom(n);
    src.get(buf, end, n);
    end += n;
  }

  /** Bytes fed but not yet consumed (held for an incomplete request). */
  public int buffered() {
    return end - start;
  }

  private void ensureRoom(int n) {
    if (buf.length - end >= n) {
      return;
    }
    int live = end - start;
    if (live + n <= buf.length / 2 + buf.length / 4) {
      System.arraycopy(buf, start, buf, 0, live);
    } else {
      long want = Math.max((long) buf.length * 2, (long) live + n);
      byte[] b = new byte[(int) Math.min(want, Integer.MAX_VALUE - 16)];
      System.arraycopy(buf, start, b, 0, live);
      buf = b;
    }
    start = 0;
    end = live;
  }

  /** The next complete request, or null when more input is needed. */
  public RespRequest next() {
    while (true) {
      if (skipBytes > 0) {
        int n = (int) Math.min(skipBytes, end - start);
        start += n;
        skipBytes -= n;
        if (skipBytes > 0) {
          return null;
        }
      }
      if (resync && !resync()) {
        return null;
      }
      if (skipLine) {
        if (!dropLine()) {
          return null;
        }
        skipLine = false;
      }
      if (argsExpected < 0) {
        if (start == end) {
          return null;
        }
        if (buf[start] != '*') {
          RespRequest inline = inline();
          if (inline == INCOMPLETE) {
            return null;
          }
          if (inline != null) {
            return inline;
          }
          continue; // an empty line
        }
        int crlf = indexOfCrlf(start + 1);
        if (crlf < 0) {
          return end - start > MAX_LINE_BYTES ? broken("Protocol error: too big mbulk count string") : null;
        }
        long n = parseLength(start + 1, crlf);
        if (n == BAD_NUMBER || n > MAX_MULTIBULK) {
          return broken("Protocol error: invalid multibulk length");
        }
        start = crlf + 2;
        if (n <= 0) {
          continue; // *0 and *-1: nothing to run, as Redis
        }
        argsExpected = (int) n;
        args = poisoned ? null : new ArrayList<>((int) Math.min(n, 64));
        argsSeen = 0;
        requestBytes = 0;
      }
      while (argsSeen < argsExpected) {
        if (bulkLength < 0) {
          if (start == end) {
            return null;
          }
          if (buf[start] != '$') {
            return broken("Protocol error: expected '$', got '" + printable(buf[start]) + "'");
          }
          int crlf = indexOfCrlf(start + 1);
          if (crlf < 0) {
            return end - start > MAX_LINE_BYTES ? broken("Protocol error: too big bulk count string") : null;
          }
          long n = parseLength(start + 1, crlf);
          if (n == BAD_NUMBER || n < 0) {
            return broken("Protocol error: invalid bulk length");
          }
          start = crlf + 2;
          requestBytes += n;
          if (!poisoned && (n > maxBulkBytes || requestBytes > maxRequestBytes)) {
            // framing intact: skip this payload and the rest of the request as they come
            poisoned = true;
            args = null;
            skipBytes = n + 2;
            argsSeen++;
            return new RespRequest.ProtocolError(n > maxBulkBytes
                ? "Protocol error: invalid bulk length"
                : "Protocol error: too big request (more than " + maxRequestBytes + " bytes of arguments)");
          }
          if (poisoned) {
            skipBytes = n + 2;
            argsSeen++;
            break; // back to the top: skip, then the next argument
          }
          bulkLength = n;
        }
        if (end - start < bulkLength + 2) {
          ensureRoom((int) (bulkLength + 2 - (end - start)));
          return null;
        }
        int payloadEnd = start + (int) bulkLength;
        if (buf[payloadEnd] != '\r' || buf[payloadEnd + 1] != '\n') {
          bulkLength = -1;
          return broken("Protocol error: bulk string of " + (payloadEnd - start)
              + " bytes not followed by CRLF (the bytes sent do not match the length given)");
        }
        byte[] arg = new byte[payloadEnd - start];
        System.arraycopy(buf, start, arg, 0, arg.length);
        args.add(arg);
        argsSeen++;
        start = payloadEnd + 2;
        bulkLength = -1;
      }
      if (argsSeen < argsExpected || skipBytes > 0) {
        continue; // a poisoned request still has bytes to skip
      }
      argsExpected = -1;
      if (poisoned) {
        poisoned = false;
        continue;
      }
      List<byte[]> done = args;
      args = null;
      return new RespRequest.Command(done);
    }
  }

  private static final RespRequest INCOMPLETE = new RespRequest.ProtocolError("incomplete");
  private static final long BAD_NUMBER = Long.MIN_VALUE;

  /** Reports broken framing and drops input up to the next '*' line. */
  private RespRequest broken(String message) {
    argsExpected = -1;
    args = null;
    bulkLength = -1;
    skipBytes = 0;
    boolean alreadyReported = poisoned;
    poisoned = false;
    resync = true;
    resyncAtLineStart = false;
    if (alreadyReported) {
      return next();
    }
    return new RespRequest.ProtocolError(message);
  }

  /** Drops input up to a line starting with '*'; true when found. */
  private boolean resync() {
    while (true) {
      if (resyncAtLineStart) {
        if (start == end) {
          return false;
        }
        if (buf[start] == '*') {
          resync = false;
          return true;
        }
        resyncAtLineStart = false;
      }
      if (!dropLine()) {
        return false;
      }
      resyncAtLineStart = true;
    }
  }

  /** Drops input through the next newline; false when there is none yet (then all input is dropped). */
  private boolean dropLine() {
    int nl = indexOf((byte) '\n', start, end);
    if (nl < 0) {
      start = end;
      return false;
    }
    start = nl + 1;
    return true;
  }

  /** An inline command, null for an empty line, {@link #INCOMPLETE} without a newline yet. */
  private RespRequest inline() {
    int nl = indexOf((byte) '\n', start, Math.min(end, start + MAX_LINE_BYTES + 1));
    if (nl < 0) {
      if (end - start > MAX_LINE_BYTES) {
        start = end;
        skipLine = true;
        return new RespRequest.ProtocolError("Protocol error: too big inline request");
      }
      return INCOMPLETE;
    }
    int lineEnd = nl > start && buf[nl - 1] == '\r' ? nl - 1 : nl;
    List<byte[]> words = InlineSplitter.split(buf, start, lineEnd);
    start = nl + 1;
    if (words == null) {
      return new RespRequest.ProtocolError("Protocol error: unbalanced quotes in request");
    }
    return words.isEmpty() ? null : new RespRequest.Command(words);
  }

  /** A decimal length between {@code from} and {@code to}, or {@link #BAD_NUMBER}. */
  private long parseLength(int from, int to) {
    if (from == to || to - from > 20) {
      return BAD_NUMBER;
    }
    boolean negative = buf[from] == '-';
    int i = negative ? from + 1 : from;
    if (i == to) {
      return BAD_NUMBER;
    }
    long v = 0;
    for (; i < to; i++) {
      int d = buf[i] - '0';
      if (d < 0 || d > 9 || v > (Long.MAX_VALUE - d) / 10) {
        return BAD_NUMBER;
      }
      v = v * 10 + d;
    }
    return negative ? -v : v;
  }

  /** Index of the CR of the first CRLF at or after {@code from}, within a line's limit; -1 if none. */
  private int indexOfCrlf(int from) {
    int limit = Math.min(end, from + MAX_LINE_BYTES + 2);
    for (int i = from; i + 1 < limit; i++) {
      if (buf[i] == '\r' && buf[i + 1] == '\n') {
        return i;
      }
    }
    return -1;
  }

  private int indexOf(byte b, int from, int to) {
    for (int i = from; i < to; i++) {
      if (buf[i] == b) {
        return i;
      }
    }
    return -1;
  }

  private static String printable(byte b) {
    return b >= 0x20 && b < 0x7f ? new String(new byte[] {b}, StandardCharsets.US_ASCII) : String.format("\\x%02x", b & 0xff);
  }
}
