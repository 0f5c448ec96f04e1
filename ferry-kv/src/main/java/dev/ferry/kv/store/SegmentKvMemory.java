package dev.ferry.kv.store;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** A {@link KvMemory} straight over a {@link MemorySegment} (no dirty tracking): tests and tools. */
public final class SegmentKvMemory implements KvMemory {
  private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final MemorySegment segment;

  public SegmentKvMemory(MemorySegment segment) {
    this.segment = segment;
  }

  @Override
  public long byteSize() {
    return segment.byteSize();
  }

  @Override
  public byte getByte(long offset) {
    return segment.get(ValueLayout.JAVA_BYTE, offset);
  }

  @Override
  public int getInt(long offset) {
    return segment.get(LE_INT, offset);
  }

  @Override
  public long getLong(long offset) {
    return segment.get(LE_LONG, offset);
  }

  @Override
  public void putInt(long offset, int value) {
    segment.set(LE_INT, offset, value);
  }

  @Override
  public void putLong(long offset, long value) {
    segment.set(LE_LONG, offset, value);
  }

  @Override
  public void read(long offset, byte[] dst, int dstOffset, int length) {
    MemorySegment.copy(segment, ValueLayout.JAVA_BYTE, offset, dst, dstOffset, length);
  }

  @Override
  public void write(long offset, byte[] src, int srcOffset, int length) {
    MemorySegment.copy(src, srcOffset, segment, ValueLayout.JAVA_BYTE, offset, length);
  }
}
