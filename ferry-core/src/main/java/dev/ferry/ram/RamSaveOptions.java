package dev.ferry.ram;

import java.util.Objects;

/**
 * How one save sends RAM (a {@link dev.ferry.savevm.SaveOptions} value; a save without one uses
 * {@link #DEFAULTS}).
 *
 * @param listener where the saver reports pages and syncs (a migration's statistics)
 * @param xbzrle the xbzrle capability: pages the cache holds go as deltas from the second pass on
 * @param xbzrleCacheBytes the xbzrle cache size (QEMU's {@code xbzrle-cache-size})
 * @param postcopyRam the postcopy-ram capability: POSTCOPY_ADVISE precedes the block list, which
 *     then carries the page size of huge-page blocks, and the save may switch to postcopy ({@link
 *     RamPostcopySave})
 * @param mappedRam the mapped-ram capability: pages go to fixed offsets of the {@code file:} ({@link
 *     MappedRamLayout}) instead of page records
 */
public record RamSaveOptions(
    RamSaveListener listener, boolean xbzrle, long xbzrleCacheBytes, boolean postcopyRam, boolean mappedRam) {
  /** No listener, no xbzrle (a snapshot save). */
  public static final RamSaveOptions DEFAULTS = new RamSaveOptions(RamSaveListener.NONE, false, 0);

  /** Without postcopy. */
  public RamSaveOptions(RamSaveListener listener, boolean xbzrle, long xbzrleCacheBytes) {
    this(listener, xbzrle, xbzrleCacheBytes, false, false);
  }

  /** Without mapped-ram. */
  public RamSaveOptions(RamSaveListener listener, boolean xbzrle, long xbzrleCacheBytes, boolean postcopyRam) {
    this(listener, xbzrle, xbzrleCacheBytes, postcopyRam, false);
  }

  public RamSaveOptions {
    Objects.requireNonNull(listener, "listener");
    if (xbzrle && xbzrleCacheBytes <= 0) {
      throw new IllegalArgumentException("xbzrle needs a positive cache size: " + xbzrleCacheBytes);
    }
    if (mappedRam && (xbzrle || postcopyRam)) {
      throw new IllegalArgumentException("Mapped-ram migration is incompatible with " + (xbzrle ? "xbzrle" : "postcopy"));
    }
  }
}
