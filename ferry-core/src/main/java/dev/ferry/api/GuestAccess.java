package dev.ferry.api;

import dev.ferry.ram.GuestMemory;

/**
 * Guest RAM as the embedder's code reaches it, on a {@link GuestThread} or a {@link Vcpu}: a region
 * by its {@link Region#index()}, a byte offset in it, multi-byte values little-endian at any
 * alignment. Reads are allowed at any time; writes only inside a guest step, and they mark their
 * pages dirty for a live migration (and wait for a missing page on a postcopy destination).
 */
public abstract sealed class GuestAccess permits GuestThread, Vcpu {
  final GuestMemory memory;

  GuestAccess(GuestMemory memory) {
    this.memory = memory;
  }

  /** Refuses a write outside a step. */
  abstract void checkStep();

  // ---------------------------------------------------------------- reads (any time)

  /** The byte at {@code offset} of region {@code region}. */
  public final byte getByte(int region, long offset) {
    return memory.getByte(region, offset);
  }

  /** The little-endian int at {@code offset} (any alignment). */
  public final int getInt(int region, long offset) {
    return memory.getInt(region, offset);
  }

  /** The little-endian long at {@code offset} (any alignment). */
  public final long getLong(int region, long offset) {
    return memory.getLong(region, offset);
  }

  /** Copies {@code length} bytes at {@code offset} into {@code dst}. */
  public final void read(int region, long offset, byte[] dst, int dstOffset, int length) {
    memory.read(region, offset, dst, dstOffset, length);
  }

  // ---------------------------------------------------------------- writes (inside a step)

  /** Stores a byte. */
  public final void putByte(int region, long offset, byte value) {
    checkStep();
    memory.putByte(region, offset, value);
  }

  /** Stores a little-endian int. */
  public final void putInt(int region, long offset, int value) {
    checkStep();
    memory.putInt(region, offset, value);
  }

  /** Stores a little-endian long. */
  public final void putLong(int region, long offset, long value) {
    checkStep();
    memory.putLong(region, offset, value);
  }

  /** Copies {@code length} bytes of {@code src} to {@code offset}. */
  public final void write(int region, long offset, byte[] src, int srcOffset, int length) {
    checkStep();
    memory.write(region, offset, src, srcOffset, length);
  }

  /** Sets {@code length} bytes at {@code offset} to {@code value}. */
  public final void fill(int region, long offset, long length, byte value) {
    checkStep();
    memory.fill(region, offset, length, value);
  }

  /** Copies within guest memory (overlapping ranges behave as if through a temporary buffer). */
  public final void copy(int srcRegion, long srcOffset, int dstRegion, long dstOffset, long length) {
    checkStep();
    memory.copy(srcRegion, srcOffset, dstRegion, dstOffset, length);
  }
}
