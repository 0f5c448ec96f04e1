package dev.ferry.stream;

/** The stream ended (or the peer closed the connection) before a complete value could be read. */
public final class TruncatedStreamException extends MigrationStreamException {
  public TruncatedStreamException(long offset, long wanted, long got) {
    super("unexpected end of stream: needed " + wanted + " more bytes, got " + got, offset);
  }
}
