package dev.ferry.kv.store;

/**
 * The RAM region the keyspace lives in, as the table sees it: byte offsets from the region's start,
 * multi-byte values little-endian. The seam between the table and where the bytes are: a plain
 * {@code MemorySegment} in unit tests ({@link SegmentKvMemory}), guest RAM through the machine's
 * guest-memory accessors (which mark written pages dirty for migration) in the service.
 */
public interface KvMemory {
  /** Bytes in the region. */
  long byteSize();

  byte getByte(long offset);

  int getInt(long offset);

  long getLong(long offset);

  void putInt(long offset, int value);

  void putLong(long offset, long value);

  void read(long offset, byte[] dst, int dstOffset, int length);

  void write(long offset, byte[] src, int srcOffset, int length);
}
