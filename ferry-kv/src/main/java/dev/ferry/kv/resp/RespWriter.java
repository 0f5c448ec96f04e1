package dev.ferry.kv.resp;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Encodes RESP2 replies into a growable buffer that the connection writes out once per batch of
 * requests (pipelined requests get their replies in one write). Mirrors {@link RespReader}. Not
 * thread-safe: one writer per connection.
 */
public final class RespWriter {
  private static final byte[] CRLF = {'\r', '\n'};
  private static final byte[] NULL_BULK = "$-1\r\n".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] NULL_ARRAY = "*-1\r\n".getBytes(StandardCharsets.US_ASCII);

  private byte[] buf = new byte[4096];
  private int length;

  /** {@code +text}: a status reply ({@code OK}, {@code PONG}); {@code text} has no CR or LF. */
  public RespWriter simple(String text) {
    put((byte) '+');
    line(text);
    return this;
  }

  /** {@code -text}: an error reply; {@code text} starts with its code ({@code ERR ...}); CR and LF become blanks. */
  public RespWriter error(String text) {
    put((byte) '-');
    line(text.replace('\r', ' ').replace('\n', ' '));
    return this;
  }

  /** {@code :n}. */
  public RespWriter integer(long n) {
    put((byte) ':');
    line(Long.toString(n));
    return this;
  }

  /** {@code $len} and the bytes. */
  public RespWriter bulk(byte[] value) {
    return bulk(value, 0, value.length);
  }

  public RespWriter bulk(byte[] value, int offset, int len) {
    put((byte) '$');
    line(Integer.toString(len));
    put(value, offset, len);
    put(CRLF, 0, 2);
    return this;
  }

  public RespWriter bulk(String value) {
    return bulk(value.getBytes(StandardCharsets.UTF_8));
  }

  /** {@code $-1}: no such key. */
  public RespWriter nullBulk() {
    put(NULL_BULK, 0, NULL_BULK.length);
    return this;
  }

  /** {@code *n}: an array whose {@code n} elements follow. */
  public RespWriter array(int n) {
    put((byte) '*');
    line(Integer.toString(n));
    return this;
  }

  public RespWriter nullArray() {
    put(NULL_ARRAY, 0, NULL_ARRAY.length);
    return this;
  }

  /** Bytes not yet written out. */
  public int pending() {
    return length;
  }

  /** The pending bytes, as a copy (tests). */
  public byte[] toByteArray() {
    return Arrays.copyOf(buf, length);
  }

  /** Writes every pending byte to {@code channel} (blocking) and empties the buffer. */
  public void writeTo(WritableByteChannel channel) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(buf, 0, length);
    while (b.hasRemaining()) {
      channel.write(b);
    }
    clear();
  }

  public void clear() {
    length = 0;
    if (buf.length > 1 << 20) {
      buf = new byte[4096]; // one big reply does not pin its buffer
    }
  }

  private void line(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    put(b, 0, b.length);
    put(CRLF, 0, 2);
  }

  private void put(byte b) {
    room(1);
    buf[length++] = b;
  }

  private void put(byte[] b, int off, int len) {
    room(len);
    System.arraycopy(b, off, buf, length, len);
    length += len;
  }

  private void room(int n) {
    if (buf.length - length < n) {
      buf = Arrays.copyOf(buf, (int) Math.min(Math.max((long) buf.length * 2, (long) length + n), Integer.MAX_VALUE - 16));
    }
  }
}
