package dev.ferry.api;

import dev.ferry.ram.RamBlock;
import java.lang.foreign.MemorySegment;

/**
 * One named RAM region of a machine (a RAM block in QEMU's words): what {@link
 * FerryMachine.Builder#ram} declared. Its index is what {@link GuestThread}'s accessors take.
 */
public final class Region {
  private final RamBlock block;
  private final int index;

  Region(RamBlock block, int index) {
    this.block = block;
    this.index = index;
  }

  /** The name given to {@link FerryMachine.Builder#ram}; the stream carries it. */
  public String name() {
    return block.name();
  }

  /** Its position among the machine's regions: the {@code region} argument of the accessors. */
  public int index() {
    return index;
  }

  /** Its size in bytes. */
  public long sizeBytes() {
    return block.usedLength();
  }

  /** Its page size in bytes (4 KiB, or 2 MiB for a huge-page region). */
  public int pageSize() {
    return block.pageSize();
  }

  /**
   * A read-only view of the region's memory, for code of the embedder's that scans it in bulk
   * (e.g. a checksum). Writes go through {@link GuestThread} only: they mark the pages dirty, which
   * a live migration needs to send them again. On a postcopy destination, a page that has not
   * arrived yet reads as zeros here (a {@link GuestThread} read waits for it).
   */
  public MemorySegment segment() {
    return block.memory().asReadOnly();
  }

  @Override
  public String toString() {
    return "Region[" + name() + ", " + sizeBytes() + " bytes, page " + pageSize() + "]";
  }
}
