package dev.ferry.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ScatteringByteChannel;

/**
 * A {@link MigrationChannel} over a JDK channel ({@code SocketChannel}, {@code FileChannel}): the
 * shutdown flag, the wrapping of every read and write, and the translation of errors into ones that
 * name the peer (or a {@link ChannelShutdownException} once shut down). Subclasses say how a
 * shutdown stops I/O in progress and which directions they allow. Scattering reads pass through, so
 * that {@link dev.ferry.stream.MigrationInput} can read a page body straight into guest RAM.
 */
abstract class NioMigrationChannel<C extends ByteChannel & GatheringByteChannel & ScatteringByteChannel>
    implements MigrationChannel, ScatteringByteChannel {
  final C ch;
  private final String peer;
  private volatile boolean shutdown;

  NioMigrationChannel(C ch, String peer) {
    this.ch = ch;
    this.peer = peer;
  }

  /** Makes a thread blocked in read or write return (called once, after the flag is set). */
  abstract void stopIo();

  /** Errors passed on as they are (the rest get the peer's name). */
  boolean passThrough(IOException e) {
    return e instanceof AsynchronousCloseException;
  }

  /** Throws when this channel does not read (a file opened for writing). */
  void checkReadable() {}

  /** Throws when this channel does not write (a file opened for reading). */
  void checkWritable() {}

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
    if (shutdown && !(e instanceof ChannelShutdownException)) {
      ChannelShutdownException s = new ChannelShutdownException(peer);
      s.initCause(e);
      return s;
    }
    if (passThrough(e)) {
      return e;
    }
    return new IOException(peer + ": " + e.getMessage(), e);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    check();
    checkReadable();
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
  public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
    check();
    checkReadable();
    try {
      long n = ch.read(dsts, offset, length);
      if (n < 0 && shutdown) {
        throw new ChannelShutdownException(peer);
      }
      return n;
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public long read(ByteBuffer[] dsts) throws IOException {
    return read(dsts, 0, dsts.length);
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    check();
    checkWritable();
    try {
      return ch.write(src);
    } catch (IOException e) {
      throw translate(e);
    }
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    check();
    checkWritable();
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
    stopIo();
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
