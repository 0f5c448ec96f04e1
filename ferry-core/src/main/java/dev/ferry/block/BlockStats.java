package dev.ferry.block;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of the last block migration (QMP {@code query-migrate} {@code disk}: QEMU's
 * MigrationStats of blk_mig_bytes_transferred/remaining/total).
 */
public final class BlockStats {
  final AtomicLong transferredBytes = new AtomicLong();
  final AtomicLong chunks = new AtomicLong();
  final AtomicLong zeroChunks = new AtomicLong();
  final AtomicLong skippedChunks = new AtomicLong();
  volatile long totalBytes;
  volatile long remainingBytes;
  volatile boolean bulkCompleted;
  volatile long setupNs;
  volatile long bulkEndNs;
  volatile long bulkBytes;

  /** Nanoseconds from setup to the end of the bulk phase (0 before it ended). */
  public long bulkNanos() {
    return bulkEndNs == 0 ? 0 : bulkEndNs - setupNs;
  }

  /** Disk bytes the bulk phase sent (whole chunks). */
  public long bulkBytes() {
    return bulkBytes;
  }

  /** Disk bytes sent so far (whole chunks as the stream carries them, ZERO_BLOCKs count none). */
  public long transferredBytes() {
    return transferredBytes.get();
  }

  /** Disk bytes still to send: the rest of the bulk phase plus dirty chunks. */
  public long remainingBytes() {
    return remainingBytes;
  }

  /** Bytes of all migrated disks. */
  public long totalBytes() {
    return totalBytes;
  }

  /** DEVICE_BLOCK records sent (ZERO_BLOCKs included). */
  public long chunks() {
    return chunks.get();
  }

  /** ZERO_BLOCK records sent. */
  public long zeroChunks() {
    return zeroChunks.get();
  }

  /** Chunks an incremental bulk phase skipped. */
  public long skippedChunks() {
    return skippedChunks.get();
  }

  public boolean bulkCompleted() {
    return bulkCompleted;
  }
}
