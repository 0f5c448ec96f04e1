package dev.ferry.testing;

import dev.ferry.transport.ChannelShutdownException;
import dev.ferry.transport.MigrationChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;

/**
 * An in-memory {@link MigrationChannel}: reads come from a fixed byte array, writes collect into a
 * buffer ({@link #written()}). For unit tests of code that takes a channel (and of {@link
 * FaultyChannel}); single-threaded.
 */
public final class MemoryChannel implements MigrationChannel {
  private final byte[] input;
  private int readPos;
  private final ByteArrayOutputStream output = new ByteArrayOutputStream();
  private final boolean returnPath;
  private boolean shutdown;
  private boolean open = true;

  public MemoryChannel(byte[] input, boolean returnPath) {
    this.input = input.clone();
    this.returnPath = returnPath;
  }

  /** A channel with nothing to read, collecting writes. */
  public static MemoryChannel sink() {
    return new MemoryChannel(new byte[0], false);
  }

  public byte[] written() {
    return output.toByteArray();
  }

  private void check() throws IOException {
    if (!open) {
      throw new ClosedChannelException();
    }
    if (shutdown) {
      throw new ChannelShutdownException(peerDescription());
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    check();
    if (readPos >= input.length) {
      return -1;
    }
    int n = Math.min(dst.remaining(), input.length - readPos);
    dst.put(input, readPos, n);
    readPos += n;
    return n;
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    check();
    int n = src.remaining();
    byte[] b = new byte[n];
    src.get(b);
    output.write(b, 0, n);
    return n;
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    long total = 0;
    for (int i = offset; i < offset + length; i++) {
      total += write(srcs[i]);
    }
    return total;
  }

  @Override
  public boolean supportsReturnPath() {
    return returnPath;
  }

  @Override
  public void shutdown() {
    shutdown = true;
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public String peerDescription() {
    return "memory";
  }

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public void close() {
    open = false;
  }
}
