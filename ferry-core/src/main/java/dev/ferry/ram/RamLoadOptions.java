package dev.ferry.ram;

/**
 * What a {@link RamLoader} accepts, decided by the destination's own configuration (QEMU decides
 * the same things from its local capabilities, not from the stream).
 *
 * @param postcopyAdvised POSTCOPY_ADVISE arrived and postcopy-ram is on locally: block-list entries
 *     of blocks whose page size is not 4 KiB then carry a be64 page size, which must match
 * @param compressEnabled the {@code compress} capability is on: COMPRESS_PAGE records are accepted
 * @param maxTotalBytes largest MEM_SIZE total accepted, checked before any block is looked up or
 *     allocated (at most {@link #ABSOLUTE_MAX_TOTAL_BYTES})
 * @param blocksStartZeroed every block is all zeros when the load starts (a fresh destination that
 *     never ran): a zero record for a page this load has not written is then skipped without
 *     reading the page, even when the RAM is committed already (--mem-prealloc)
 * @param mappedRam the {@code mapped-ram} capability is on: each block-list entry is followed by
 *     its {@link MappedRamLayout} header, the pages are read from their fixed offsets in the file,
 *     and page records are refused
 * @param pageDataDiscarded every record is read and checked as a load would (block names, offsets,
 *     XBZRLE deltas and compressed pages decoded into scratch space, statistics counted), but no
 *     page content is stored, so the blocks stay untouched: for a decoder that needs the records
 *     and not the RAM ({@code ferry analyze} without {@code --extract}). Postcopy pages are still
 *     placed.
 */
public record RamLoadOptions(
    boolean postcopyAdvised,
    boolean compressEnabled,
    long maxTotalBytes,
    boolean blocksStartZeroed,
    boolean mappedRam,
    boolean pageDataDiscarded) {
  /** No sane stream announces more guest RAM than this (1 TiB). */
  public static final long ABSOLUTE_MAX_TOTAL_BYTES = 1L << 40;

  public RamLoadOptions {
    if (maxTotalBytes <= 0 || maxTotalBytes > ABSOLUTE_MAX_TOTAL_BYTES) {
      throw new IllegalArgumentException("maxTotalBytes must be in 1.." + ABSOLUTE_MAX_TOTAL_BYTES + ": " + maxTotalBytes);
    }
  }

  public RamLoadOptions(boolean postcopyAdvised, boolean compressEnabled, long maxTotalBytes) {
    this(postcopyAdvised, compressEnabled, maxTotalBytes, false, false, false);
  }

  public RamLoadOptions(boolean postcopyAdvised, boolean compressEnabled, long maxTotalBytes, boolean blocksStartZeroed) {
    this(postcopyAdvised, compressEnabled, maxTotalBytes, blocksStartZeroed, false, false);
  }

  public RamLoadOptions withBlocksStartZeroed(boolean zeroed) {
    return new RamLoadOptions(postcopyAdvised, compressEnabled, maxTotalBytes, zeroed, mappedRam, pageDataDiscarded);
  }

  public RamLoadOptions withPageDataDiscarded(boolean discarded) {
    return new RamLoadOptions(postcopyAdvised, compressEnabled, maxTotalBytes, blocksStartZeroed, mappedRam, discarded);
  }

  public RamLoadOptions withMappedRam(boolean on) {
    return new RamLoadOptions(postcopyAdvised, compressEnabled, maxTotalBytes, blocksStartZeroed, on, pageDataDiscarded);
  }

  /** Precopy, no compression, up to 1 TiB. */
  public static RamLoadOptions defaults() {
    return new RamLoadOptions(false, false, ABSOLUTE_MAX_TOTAL_BYTES);
  }

  public RamLoadOptions withPostcopyAdvised(boolean advised) {
    return new RamLoadOptions(advised, compressEnabled, maxTotalBytes, blocksStartZeroed, mappedRam, pageDataDiscarded);
  }

  public RamLoadOptions withCompressEnabled(boolean enabled) {
    return new RamLoadOptions(postcopyAdvised, enabled, maxTotalBytes, blocksStartZeroed, mappedRam, pageDataDiscarded);
  }

  public RamLoadOptions withMaxTotalBytes(long max) {
    return new RamLoadOptions(postcopyAdvised, compressEnabled, max, blocksStartZeroed, mappedRam, pageDataDiscarded);
  }
}
