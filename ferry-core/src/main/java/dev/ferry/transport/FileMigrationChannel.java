package dev.ferry.transport;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.NonReadableChannelException;
import java.nio.channels.NonWritableChannelException;

/**
 * {@code file:}: a stream file, written (created or truncated) by an outgoing migration and read by
 * an incoming one. No return path. File reads never wait for a peer, so {@link #shutdown()} only makes
 * later calls fail; it also closes the file so that a thread inside a long read or write gets out.
 * Seekable: {@code mapped-ram} writes and reads pages at their own offsets ({@link
 * dev.ferry.stream.SeekableChannel}).
 */
final class FileMigrationChannel extends NioMigrationChannel<FileChannel> implements dev.ferry.stream.SeekableChannel {
  private final boolean writing;

  FileMigrationChannel(FileChannel ch, String peer, boolean writing) {
    super(ch, peer);
    this.writing = writing;
  }

  /** The file itself, for the positional reads and writes of {@code mapped-ram}. */
  @Override
  public FileChannel fileChannel() {
    return ch;
  }

  @Override
  public boolean supportsReturnPath() {
    return false;
  }

  @Override
  boolean passThrough(IOException e) {
    return e instanceof ClosedChannelException;
  }

  @Override
  void checkReadable() {
    if (writing) {
      throw new NonReadableChannelException();
    }
  }

  @Override
  void checkWritable() {
    if (!writing) {
      throw new NonWritableChannelException();
    }
  }

  @Override
  void stopIo() {
    try {
      ch.close();
    } catch (IOException ignored) {
      // closing a file we only read or write: nothing to report to a canceller
    }
  }
}
