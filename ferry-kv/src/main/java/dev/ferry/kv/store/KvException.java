package dev.ferry.kv.store;

/** A command the keyspace refuses; the message is the Redis error reply ({@code ERR ...}, {@code OOM ...}). */
public final class KvException extends RuntimeException {
  /** Redis's text when the memory limit is reached. */
  public static final String OOM = "OOM command not allowed when used memory > 'maxmemory'.";

  public KvException(String message) {
    super(message, null, false, false);
  }
}
