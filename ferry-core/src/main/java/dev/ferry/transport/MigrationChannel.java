package dev.ferry.transport;

import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;

/**
 * One end of a migration connection: {@link #read} takes bytes from the peer, {@link #write} sends
 * bytes to it. The main stream flows one way; on transports with a return path (tcp, unix, socket
 * fds) the other direction carries the return path (spec §10.1), and one thread may read while
 * another writes.
 *
 * <p>Reads and writes block. {@link #shutdown()} is the way to stop them from another thread (QEMU's
 * {@code qemu_file_shutdown}): it records that the channel was shut down, then shuts the transport
 * down so that a blocked read or write returns at once with a {@link ChannelShutdownException}, as
 * does every later call. {@link #close()} releases the resources; for {@code exec:} it also waits
 * for the child and reports a non-zero exit status as an {@link IOException}.
 *
 * <p>A read that finds the peer gone returns -1 (end of stream), which {@link
 * dev.ferry.stream.MigrationInput} turns into a {@link dev.ferry.stream.TruncatedStreamException}.
 */
public interface MigrationChannel extends ByteChannel, GatheringByteChannel {

  /** True when the reverse direction can carry a return path. */
  boolean supportsReturnPath();

  /**
   * Stops this channel from any thread: blocked and later reads and writes fail with {@link
   * ChannelShutdownException}. Idempotent; never blocks for long; {@link #close()} is still needed.
   */
  void shutdown();

  /** True once {@link #shutdown()} was called. */
  boolean isShutdown();

  /** Who is at the other end, for messages: {@code tcp:127.0.0.1:4444}, {@code exec:cat > x}, ... */
  String peerDescription();

  @Override
  default long write(java.nio.ByteBuffer[] srcs) throws IOException {
    return write(srcs, 0, srcs.length);
  }
}
