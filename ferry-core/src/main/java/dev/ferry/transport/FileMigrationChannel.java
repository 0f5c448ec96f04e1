package dev.ferry.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.NonReadableChannelException;

/**
 * {@code file:}: a stream file, written (created or truncated) by an outgoing migration and read by
 * an incoming one. No return path. File reads never wait for a peer, so {@link #shutdown()} only makes
 * later calls fail; it also closes the file so that a thread inside a long read or write gets out.
 */
final class FileMigrationChannel implements MigrationChannel {
  private final FileChannel ch;
  private final String peer;
  private final boolean writing;
  private volatile boolean shutdown;

  FileMigrationChannel(FileChannel ch, String peer, boolean writing) {
    this.ch = ch;
    this.peer = peer;
    this.writing = writing;
  }

  @Override
  public boolean supportsReturnPath() {
    return false;
  }

  @Override
  public String peerDescription() {
    return peer;
  }

  private void check() throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peer);
    }
  }

  private IOException translate(IOException e) {
    if (shutdown) {
      ChannelShutdownException s = new ChannelShutdownException(peer);
      s.initCause(e);
      return s;
    }
    if (e instanceof ClosedChannelException) {
      return e;
    }
    return new IOException(peer + ": " + e.getMessage(), e);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    check();
    if (writing) {
      throw new NonReadableChannelException();
    }
    try {
      return ch.read(dst);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    check();
    if (!writing) {
      throw new NonWritableChannelException();
    }
    try {
      return ch.write(src);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    check();
    if (!writing) {
      throw new NonWritableChannelException();
    }
    try {
      return ch.write(srcs, offset, length);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public void shutdown() {
    shutdown = true;
    try {
      ch.close();
    } catch (IOException ignored) {
      // closing a file we only read or write: nothing to report to a canceller
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
}
