package dev.ferry.ram;

import dev.ferry.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Anonymous memory mappings for guest RAM ({@code mmap}, {@code munmap}, {@code madvise} through
 * Ferry's one libc binding, {@link LibC}), so that a large guest costs nothing until its pages are
 * touched. Where libc cannot be linked (not Linux, native access denied) {@link #isAvailable()} is
 * false and callers fall back to {@link Arena#allocate}.
 */
final class NativeMemory {
  private static final Logger LOG = LoggerFactory.getLogger(NativeMemory.class);

  private static final long HUGE_PAGE = 2L << 20;
  /** Transparent huge pages for guest RAM (as QEMU advises): 512x fewer page faults. */
  private static final boolean USE_HUGE_PAGES =
      Boolean.parseBoolean(System.getProperty("ferry.ram.hugepages", "true"));

  private static final boolean AVAILABLE = linkLibc();

  private NativeMemory() {}

  private static boolean linkLibc() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    if (!os.startsWith("linux") || ValueLayout.ADDRESS.byteSize() != 8) {
      return false;
    }
    try {
      LibC.linkMemoryCalls(); // links mmap and friends (class initialisation), or fails here
      return true;
    } catch (RuntimeException | LinkageError e) {
      LOG.warn("anonymous mmap unavailable, guest RAM falls back to committed Arena memory: {}", e.toString());
      return false;
    }
  }

  static boolean isAvailable() {
    return AVAILABLE;
  }

  /**
   * Maps {@code length} bytes of private anonymous memory aligned to {@code alignment} (a power of
   * two, at least 4 KiB) and returns the raw address. Over-maps by {@code alignment} and unmaps the
   * slack on both sides, so that only the aligned range stays mapped.
   */
  static long mapAnonymous(long length, long alignment) {
    if (USE_HUGE_PAGES && length >= HUGE_PAGE && alignment < HUGE_PAGE) {
      alignment = HUGE_PAGE;
    }
    long address = mapAligned(length, alignment);
    if (USE_HUGE_PAGES && length >= HUGE_PAGE) {
      advise(address, length, LibC.MADV_HUGEPAGE);
    }
    return address;
  }

  /**
   * Faults in every page of the range writable without touching its content (madvise
   * MADV_POPULATE_WRITE, Linux 5.14+, QEMU's -mem-prealloc); false when the kernel refused.
   */
  static boolean populate(long address, long length) {
    return advise(address, length, LibC.MADV_POPULATE_WRITE);
  }

  private static boolean advise(long address, long length, int advice) {
    if (LibC.madvise(address, length, advice) != 0) {
      LOG.debug("madvise({}) failed: errno {}", advice, LibC.errno());
      return false;
    }
    return true;
  }

  private static long mapAligned(long length, long alignment) {
    long slack = alignment > 4096 ? alignment : 0;
    long mapped = length + slack;
    long base =
        LibC.mmap(
            0L,
            mapped,
            LibC.PROT_READ | LibC.PROT_WRITE,
            LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE,
            -1,
            0L);
    if (base == LibC.MAP_FAILED) {
      throw new OutOfMemoryError("mmap of " + mapped + " bytes failed: errno " + LibC.errno());
    }
    if (slack == 0) {
      return base;
    }
    long aligned = (base + alignment - 1) & -alignment;
    if (aligned > base) {
      unmap(base, aligned - base);
    }
    long tail = base + mapped - (aligned + length);
    if (tail > 0) {
      unmap(aligned + length, tail);
    }
    return aligned;
  }

  static void unmap(long address, long length) {
    if (LibC.munmap(address, length) != 0) {
      LOG.error("munmap({}, {}) failed: errno {}", Long.toHexString(address), length, LibC.errno());
    }
  }

  /**
   * Drops the pages of the range: the next read of them sees zeros (private anonymous mapping), or
   * the file's content again (shared file mapping, whose dirty pages stay in the page cache).
   */
  static void dontNeed(long address, long length) {
    if (LibC.madvise(address, length, LibC.MADV_DONTNEED) != 0) {
      throw new IllegalStateException("madvise(DONTNEED) failed: errno " + LibC.errno());
    }
  }
}
