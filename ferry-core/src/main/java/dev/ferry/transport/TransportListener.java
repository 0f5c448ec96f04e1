package dev.ferry.transport;

import java.io.Closeable;
import java.io.IOException;

/**
 * The incoming side of a transport: where a destination waits for its source. For tcp and unix a
 * listening socket; for exec, fd and file the single channel, handed out by the first {@link
 * #accept()}.
 *
 * <p>(Named apart from {@code dev.ferry.migration.MigrationListener}, the status observer.)
 */
public interface TransportListener extends Closeable {

  /**
   * The URI a source should connect to: for {@code tcp:} with port 0 the actual port, for a wildcard
   * host the loopback address; otherwise the URI listened on.
   */
  MigrationUri boundUri();

  /**
   * Waits for the next connection. Blocks until a peer connects; {@link #close()} from another
   * thread makes a blocked call throw {@link java.nio.channels.AsynchronousCloseException}, and an
   * interrupt makes it throw {@link java.nio.channels.ClosedByInterruptException}.
   *
   * @throws IllegalStateException for exec, fd and file when the channel was already taken
   */
  MigrationChannel accept() throws IOException;

  /** Stops listening (removes a unix socket file it created); channels already accepted stay open. */
  @Override
  void close() throws IOException;
}
