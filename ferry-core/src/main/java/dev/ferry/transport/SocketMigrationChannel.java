package dev.ferry.transport;

import java.io.IOException;
import java.nio.channels.SocketChannel;

/**
 * {@code tcp:} and {@code unix:}: a connected blocking {@link SocketChannel}. The return path is the
 * same socket's other direction. {@link #shutdown()} shuts both directions down, which the JDK turns
 * into a wake-up of a thread blocked in read or write; the flag set first makes that wake-up a
 * {@link ChannelShutdownException} rather than an end of stream.
 */
final class SocketMigrationChannel extends NioMigrationChannel<SocketChannel> {
  SocketMigrationChannel(SocketChannel ch, String peer) {
    super(ch, peer);
  }

  @Override
  public boolean supportsReturnPath() {
    return true;
  }

  @Override
  void stopIo() {
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
}
