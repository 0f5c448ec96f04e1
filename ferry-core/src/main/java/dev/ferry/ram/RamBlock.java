package dev.ferry.ram;

import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * One named region of guest RAM, off-heap and aligned to its page size (QEMU's RAMBlock).
 *
 * <p>Memory comes from a private anonymous {@code mmap} with {@code MAP_NORESERVE} (see {@link
 * NativeMemory}): an 8 GiB block costs no physical memory until the guest touches its pages, and
 * {@link #discard} hands pages back to the kernel. Where mmap is unavailable the block falls back
 * to {@link Arena#allocate}, which commits and zero-fills every byte up front. Stream
 * offsets within the block are in bytes and aligned to the target page size (4 KiB); the block's own
 * page size (its "host page size": 4 KiB, or 2 MiB for huge-page blocks) is what postcopy places
 * atomically and what discard ranges are aligned to.
 *
 * <p>A block can also be a shared mapping of a file ({@link #mapFile}: {@code ferry analyze
 * --extract} loads RAM straight into its output files), whose pages {@link #dropResident} unmaps
 * without losing them.
 */
public final class RamBlock implements AutoCloseable {
  /** Longest block name the 7.2 analyzer copes with (its length byte is read as signed). */
  public static final int MAX_NAME_LENGTH = 127;

  private final String name;
  private final long usedLength;
  private final int pageSize;
  private final Arena arena;
  private final MemorySegment memory;
  /** Start address of the mapping, or 0 when the block lives in Arena memory. */
  private final long mappedAddress;

  @SuppressWarnings("restricted") // wraps the raw mapping from NativeMemory
  private RamBlock(String name, long usedLength, int pageSize) {
    this.name = checkedName(name);
    if (Integer.bitCount(pageSize) != 1 || pageSize < StreamHeader.TARGET_PAGE_SIZE) {
      throw new IllegalArgumentException("page size must be a power of two >= 4096: " + pageSize);
    }
    if (usedLength <= 0 || usedLength % pageSize != 0) {
      throw new IllegalArgumentException(
          "RAM block '" + name + "' length " + usedLength + " is not a positive multiple of its page size " + pageSize);
    }
    this.usedLength = usedLength;
    this.pageSize = pageSize;
    this.fileMappedAddress = 0;
    this.arena = Arena.ofShared();
    boolean ok = false;
    try {
      if (NativeMemory.isAvailable()) {
        long address = NativeMemory.mapAnonymous(usedLength, pageSize);
        this.mappedAddress = address;
        // the arena owns the mapping: closing it unmaps, after which any access fails cleanly
        this.memory =
            MemorySegment.ofAddress(address).reinterpret(usedLength, arena, s -> NativeMemory.unmap(address, usedLength));
      } else {
        this.mappedAddress = 0;
        this.memory = arena.allocate(usedLength, pageSize); // zero-filled, like fresh guest RAM
      }
      ok = true;
    } finally {
      if (!ok) {
        arena.close();
      }
    }
  }

  /** {@code name} when it is a valid block name (1..{@value #MAX_NAME_LENGTH} chars). */
  private static String checkedName(String name) {
    Objects.requireNonNull(name, "name");
    if (name.isEmpty() || name.length() > MAX_NAME_LENGTH) {
      throw new IllegalArgumentException("RAM block name must be 1.." + MAX_NAME_LENGTH + " chars: '" + name + "'");
    }
    return name;
  }

  /** Checks that {@code usedLength} is a positive multiple of 4096 (blocks with 4 KiB pages). */
  private static void checkLength4k(String name, long usedLength) {
    if (usedLength <= 0 || usedLength % StreamHeader.TARGET_PAGE_SIZE != 0) {
      throw new IllegalArgumentException("RAM block '" + name + "' length " + usedLength + " is not a positive multiple of 4096");
    }
  }

  /** Start address of a file mapping ({@link #mapFile}), or 0. */
  private final long fileMappedAddress;

  private RamBlock(String name, long usedLength, Path file) throws IOException {
    this.name = checkedName(name);
    checkLength4k(name, usedLength);
    this.usedLength = usedLength;
    this.pageSize = StreamHeader.TARGET_PAGE_SIZE;
    this.mappedAddress = 0; // not anonymous: no pagemap shortcuts, discard() writes zeros
    this.arena = Arena.ofShared();
    boolean ok = false;
    try (FileChannel fc = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
        StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      // a fresh file of usedLength bytes reads as zeros, like fresh guest RAM; the mapping outlives the channel
      this.memory = fc.map(FileChannel.MapMode.READ_WRITE, 0, usedLength, arena);
      this.fileMappedAddress = memory.address();
      ok = true;
    } finally {
      if (!ok) {
        arena.close();
      }
    }
  }

  /**
   * A block whose memory is a shared mapping of {@code file}, created (or emptied) with {@code
   * usedLength} zero bytes: what is written to the block is the file's content, written back by the
   * kernel, and stays there after {@link #close()}.
   */
  public static RamBlock mapFile(String name, long usedLength, Path file) throws IOException {
    return new RamBlock(name, usedLength, file);
  }

  /**
   * For a file-mapped block: unmaps its pages from this process (madvise {@code MADV_DONTNEED}),
   * which keeps their content in the file and the page cache, so the process's resident memory stays
   * small while a large block is written; a later access maps a page in again. Does nothing for other
   * blocks (there it would drop their content).
   */
  public void dropResident() {
    if (fileMappedAddress != 0 && NativeMemory.isAvailable() && memory.scope().isAlive()) {
      NativeMemory.dontNeed(fileMappedAddress, usedLength);
    }
  }

  /**
   * A block with no memory behind it, for a decoder that checks records and stores no page ({@code
   * ferry analyze} without {@code --extract}, {@link RamLoadOptions#pageDataDiscarded()}): nothing is
   * mapped (nor libc linked, a first call's cost), and any access to its memory fails with
   * IllegalStateException instead of reading or writing anything.
   */
  public static RamBlock unbacked(String name, long usedLength) {
    return new RamBlock(name, usedLength);
  }

  @SuppressWarnings("restricted") // a segment of a closed scope: never dereferenced
  private RamBlock(String name, long usedLength) {
    this.name = checkedName(name);
    checkLength4k(name, usedLength);
    this.usedLength = usedLength;
    this.pageSize = StreamHeader.TARGET_PAGE_SIZE;
    this.mappedAddress = 0;
    this.fileMappedAddress = 0;
    this.arena = Arena.ofShared();
    Arena gone = Arena.ofConfined();
    this.memory = MemorySegment.NULL.reinterpret(usedLength, gone, null);
    gone.close(); // from here on every access to memory throws
  }

  /** A zero-filled block of {@code usedLength} bytes with the given page size. */
  public static RamBlock allocate(String name, long usedLength, int pageSize) {
    return new RamBlock(name, usedLength, pageSize);
  }

  /** A zero-filled block with 4 KiB pages. */
  public static RamBlock allocate(String name, long usedLength) {
    return new RamBlock(name, usedLength, StreamHeader.TARGET_PAGE_SIZE);
  }

  public String name() {
    return name;
  }

  /** Bytes in the block (QEMU's used_length). */
  public long usedLength() {
    return usedLength;
  }

  /** The block's own (host) page size: 4096 or a huge page size. */
  public int pageSize() {
    return pageSize;
  }

  /** Number of target (4 KiB) pages in the block. */
  public long targetPageCount() {
    return usedLength / StreamHeader.TARGET_PAGE_SIZE;
  }

  /**
   * The whole block. Guest programs must not write through it directly: they use {@code
   * GuestMemory}, which keeps the dirty log; migration code reads and loads through it.
   */
  public MemorySegment memory() {
    return memory;
  }

  /** The target page at {@code offset} (4 KiB aligned). */
  public MemorySegment targetPage(long offset) {
    return memory.asSlice(offset, StreamHeader.TARGET_PAGE_SIZE);
  }

  /**
   * True when the block is an anonymous mapping whose pages are committed only when touched;
   * false for the Arena fallback.
   */
  public boolean isLazilyCommitted() {
    return mappedAddress != 0;
  }

  /**
   * Commits every page of the block now (QEMU's {@code -mem-prealloc}) without changing its
   * content, so that later writes, e.g. an incoming migration's pages, do not pay a page fault each.
   * Safe while others write the block. A no-op for the Arena fallback, which is committed already.
   */
  public void preallocate() {
    preallocate(() -> false);
  }

  /**
   * {@link #preallocate()} that stops between chunks once {@code stop} says so (the owner is about
   * to close the block: it joins the caller first, so the block is never unmapped under it).
   */
  public void preallocate(java.util.function.BooleanSupplier stop) {
    if (mappedAddress == 0) {
      return;
    }
    // in 64 MiB steps: the kernel holds the process's mmap lock for each call, and other threads
    // of the process (another machine, the JVM's own mappings) must not wait for all of it
    long chunk = 64L << 20;
    for (long off = 0; off < usedLength && !stop.getAsBoolean(); off += chunk) {
      long len = Math.min(chunk, usedLength - off);
      if (!NativeMemory.populate(mappedAddress + off, len)) {
        // older kernels: touch one word per page with an atomic add of 0 (content unchanged)
        for (long p = off; p < off + len; p += StreamHeader.TARGET_PAGE_SIZE) {
          TOUCH.getAndAdd(memory, p, 0L);
        }
      }
    }
  }

  private static final java.lang.invoke.VarHandle TOUCH = java.lang.foreign.ValueLayout.JAVA_LONG.varHandle();

  /**
   * Drops the content of {@code [offset, offset + length)}: afterwards it reads as zeros and, for a
   * mapped block, no longer occupies physical memory (madvise {@code MADV_DONTNEED}). Both values
   * must be multiples of the target page size. Callers make sure no guest writes the range at the
   * same time (postcopy discards before the destination runs; tests pause the machine).
   */
  public void discard(long offset, long length) {
    int page = StreamHeader.TARGET_PAGE_SIZE;
    if (offset < 0 || length < 0 || offset % page != 0 || length % page != 0 || offset > usedLength - length) {
      throw new IllegalArgumentException(
          "discard of [" + offset + ", +" + length + ") in " + this + ": must be 4 KiB aligned and inside the block");
    }
    if (length == 0) {
      return;
    }
    if (!memory.scope().isAlive()) {
      throw new IllegalStateException(this + " is closed");
    }
    if (mappedAddress != 0) {
      NativeMemory.dontNeed(mappedAddress + offset, length);
    } else {
      memory.asSlice(offset, length).fill((byte) 0);
    }
  }

  @Override
  public void close() {
    arena.close();
  }

  @Override
  public String toString() {
    return "RamBlock[" + name + ", " + usedLength + " bytes, page " + pageSize + "]";
  }
}
