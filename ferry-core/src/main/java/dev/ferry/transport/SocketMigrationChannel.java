package dev.ferry.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.SocketChannel;

/**
 * {@code tcp:} and {@code unix:}: a connected blocking {@link SocketChannel}. The return path is the
 * same socket's other direction. {@link #shutdown()} shuts both directions down, which the JDK turns
 * into a wake-up of a thread blocked in read or write; the flag set first makes that wake-up a
 * {@link ChannelShutdownException} rather than an end of stream.
 */
final class SocketMigrationChannel implements MigrationChannel {
  private final SocketChannel ch;
  private final String peer;
  private volatile boolean shutdown;

  SocketMigrationChannel(SocketChannel ch, String peer) {
    this.ch = ch;
    this.peer = peer;
  }

  @Override
  public boolean supportsReturnPath() {
    return true;
  }

  @Override
  public String peerDescription() {
    return peer;
  }

  private IOException translate(IOException e) {
    if (shutdown && !(e instanceof ChannelShutdownException)) {
      ChannelShutdownException s = new ChannelShutdownException(peer);
      s.initCause(e);
      return s;
    }
    if (e instanceof AsynchronousCloseException) {
      return e;
    }
    return new IOException(peer + ": " + e.getMessage(), e);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peer);
    }
    try {
      int n = ch.read(dst);
      if (n < 0 && shutdown) {
        throw new ChannelShutdownException(peer);
      }
      return n;
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peer);
    }
    try {
      return ch.write(src);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peer);
    }
    try {
      return ch.write(srcs, offset, length);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public void shutdown() {
    if (shutdown) {
      return;
    }
    shutdown = true;
    try {
      ch.shutdownInput();
    } catch (IOException ignored) {
      // already closed or not connected: nothing is blocked on it then
    }
    try {
      ch.shutdownOutput();
    } catch (IOException ignored) {
      // as above
    }
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public boolean isOpen() {
    return ch.isOpen();
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }

  @Override
  public String toString() {
    return "MigrationChannel[" + peer + "]";
  }
}
