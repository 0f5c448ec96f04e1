package dev.ferry.migration;

import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The two directions of a migration connection as the engine sees them: the stream, and the
 * return path (the same socket's other direction) where the transport has one.
 */
public interface MigrationConnection extends AutoCloseable {
  /** Source side: the stream to the destination. Destination side: the return path. */
  WritableByteChannel output();

  /** Destination side: the stream. Source side: the return path. Null when there is none. */
  ReadableByteChannel input();

  /** Whether this connection can carry a return path. */
  boolean supportsReturnPath();

  /** Unblocks readers and writers blocked in I/O (from another thread), as for a cancel. */
  void shutdown();

  /** For messages: "tcp:127.0.0.1:4444". */
  String describe();

  @Override
  void close() throws IOException;
}
