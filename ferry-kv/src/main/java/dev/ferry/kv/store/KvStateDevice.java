package dev.ferry.kv.store;

import dev.ferry.vmstate.VMStateDescription;

/**
 * The VMState description of {@link KvState}: the keyspace's bookkeeping travels as the state of
 * device {@value #IDSTR}, next to the region it describes. A load checks that the destination's
 * region has the source's size and that the loaded bookkeeping fits in it, so a damaged or foreign
 * state fails the load instead of a later command.
 */
public final class KvStateDevice {
  /** The device's idstr in the stream. */
  public static final String IDSTR = "ferry-kv";

  public static final VMStateDescription<KvState> DESCRIPTION =
      VMStateDescription.<KvState>builder(IDSTR)
          .version(1)
          .minimumVersion(1)
          .uint64Equal("region_bytes", s -> s.regionBytes)
          .uint64("buckets_offset", s -> s.bucketsOffset, (s, v) -> s.bucketsOffset = v)
          .uint64("bucket_count", s -> s.bucketCount, (s, v) -> s.bucketCount = v)
          .uint64("key_count", s -> s.keyCount, (s, v) -> s.keyCount = v)
          .uint64("expires_count", s -> s.expiresCount, (s, v) -> s.expiresCount = v)
          .uint64("heap_top", s -> s.heapTop, (s, v) -> s.heapTop = v)
          .uint64("allocated_bytes", s -> s.allocatedBytes, (s, v) -> s.allocatedBytes = v)
          .uint64Array("free_heads", KvState.CLASS_COUNT, s -> s.freeHeads)
          .uint64("expire_cursor", s -> s.expireCursor, (s, v) -> s.expireCursor = v)
          .uint64("commands_processed", s -> s.commandsProcessed, (s, v) -> s.commandsProcessed = v)
          .uint64("expired_keys", s -> s.expiredKeys, (s, v) -> s.expiredKeys = v)
          .uint64("keyspace_hits", s -> s.keyspaceHits, (s, v) -> s.keyspaceHits = v)
          .uint64("keyspace_misses", s -> s.keyspaceMisses, (s, v) -> s.keyspaceMisses = v)
          .postLoad((s, version) -> check(s))
          .build();

  private KvStateDevice() {}

  /** Refuses bookkeeping that does not fit the region (one line naming the field). */
  static void check(KvState s) {
    if (!s.formatted()) {
      if (s.keyCount != 0 || s.heapTop != 0) {
        throw new IllegalArgumentException("ferry-kv state: bucket_count 0 (unformatted) but key_count " + s.keyCount + ", heap_top " + s.heapTop);
      }
      return;
    }
    if (Long.bitCount(s.bucketCount) != 1) {
      throw new IllegalArgumentException("ferry-kv state: bucket_count " + s.bucketCount + " is not a power of two");
    }
    if (s.heapTop < KvAllocator.RESERVED_BYTES || s.heapTop > s.regionBytes) {
      throw new IllegalArgumentException("ferry-kv state: heap_top " + s.heapTop + " outside the region of " + s.regionBytes + " bytes");
    }
    if (s.bucketsOffset < KvAllocator.RESERVED_BYTES || s.bucketsOffset + s.bucketCount * 8 > s.heapTop) {
      throw new IllegalArgumentException("ferry-kv state: bucket array at " + s.bucketsOffset + " (" + s.bucketCount + " buckets) outside the heap (top " + s.heapTop + ")");
    }
    if (s.expiresCount > s.keyCount || s.allocatedBytes > s.heapTop) {
      throw new IllegalArgumentException("ferry-kv state: counts do not add up (keys " + s.keyCount + ", expires " + s.expiresCount
          + ", allocated " + s.allocatedBytes + " of heap " + s.heapTop + ")");
    }
    for (int i = 0; i < s.freeHeads.length; i++) {
      if (s.freeHeads[i] != 0 && (s.freeHeads[i] < KvAllocator.RESERVED_BYTES || s.freeHeads[i] >= s.heapTop)) {
        throw new IllegalArgumentException("ferry-kv state: free_heads[" + i + "] " + s.freeHeads[i] + " outside the heap (top " + s.heapTop + ")");
      }
    }
  }
}
