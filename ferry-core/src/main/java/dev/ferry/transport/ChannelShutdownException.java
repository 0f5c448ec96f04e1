package dev.ferry.transport;

import java.io.IOException;

/** A read or write on a {@link MigrationChannel} after (or interrupted by) its shutdown. */
public final class ChannelShutdownException extends IOException {
  public ChannelShutdownException(String peer) {
    super("migration channel " + peer + " was shut down");
  }
}
