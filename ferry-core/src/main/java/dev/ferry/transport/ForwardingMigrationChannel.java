package dev.ferry.transport;

import java.io.IOException;

/**
 * A channel wrapped around another one (TLS, the plain-stream gates of the migration package): it
 * forwards what it does not change to the channel it wraps.
 */
public abstract class ForwardingMigrationChannel implements MigrationChannel {
  /** The channel this one wraps. */
  protected final MigrationChannel raw;

  /** Wraps {@code raw}. */
  protected ForwardingMigrationChannel(MigrationChannel raw) {
    this.raw = raw;
  }

  @Override
  public boolean supportsReturnPath() {
    return raw.supportsReturnPath();
  }

  @Override
  public void shutdown() {
    raw.shutdown();
  }

  @Override
  public boolean isShutdown() {
    return raw.isShutdown();
  }

  @Override
  public String peerDescription() {
    return raw.peerDescription();
  }

  @Override
  public boolean isOpen() {
    return raw.isOpen();
  }

  @Override
  public void close() throws IOException {
    raw.close();
  }
}
