package dev.ferry.ram;

/**
 * What the RAM saver reports while it sends (the migration's statistics implement it).
 *
 * <p>Page counts are not reported per page: the saver, the only writer, keeps them in plain fields
 * and hands its running totals over with {@link #published} at the end of every iteration, at
 * every dirty sync and at completion. Readers therefore see totals at most one iteration (50 ms or
 * one rate-limit window) old, and always a consistent set.
 */
public interface RamSaveListener {
  /** Totals of one save so far (sent records per kind and their payload bytes). */
  record Counts(
      long zeroPages,
      long normalPages,
      long xbzrlePages,
      long xbzrleBytes,
      long xbzrleCacheMisses,
      long xbzrleOverflows) {
    public static final Counts ZERO = new Counts(0, 0, 0, 0, 0, 0);

    /** Payload bytes of the normal pages: each one target page. */
    public long normalBytes() {
      return normalPages * dev.ferry.stream.StreamHeader.TARGET_PAGE_SIZE;
    }
  }

  /** The saver's totals as of now (called on the saving thread, once per iteration, not per page). */
  default void published(Counts totals) {}

  /** A dirty-log sync found {@code newlyDirtyPages} pages to send again; {@code pass} counts syncs from 1. */
  default void sync(long pass, long newlyDirtyPages) {}

  RamSaveListener NONE = new RamSaveListener() {};
}
