package dev.ferry.ram;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Locale;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Anonymous memory mappings through the FFM API ({@code mmap}, {@code munmap}, {@code madvise}), so
 * that a large guest costs nothing until its pages are touched. The functions are looked up once,
 * at class initialisation, the way Lucene's {@code PosixNativeAccess} does; where that fails (not
 * Linux, native access denied) {@link #isAvailable()} is false and callers fall back to {@link
 * Arena#allocate}.
 *
 * <p>The flag values are Linux's (identical on x86-64 and aarch64).
 */
@SuppressWarnings("restricted") // the one place Ferry calls native code; needs --enable-native-access
final class NativeMemory {
  private static final Logger LOG = LoggerFactory.getLogger(NativeMemory.class);

  private static final int PROT_READ = 0x1;
  private static final int PROT_WRITE = 0x2;
  private static final int MAP_PRIVATE = 0x02;
  private static final int MAP_ANONYMOUS = 0x20;
  private static final int MAP_NORESERVE = 0x4000;
  private static final int MADV_DONTNEED = 4;
  private static final int MADV_HUGEPAGE = 14;
  private static final int MADV_POPULATE_WRITE = 23;
  private static final long HUGE_PAGE = 2L << 20;
  /** Transparent huge pages for guest RAM (as QEMU advises): 512x fewer page faults. */
  private static final boolean USE_HUGE_PAGES =
      Boolean.parseBoolean(System.getProperty("ferry.ram.hugepages", "true"));
  private static final long MAP_FAILED = -1L;

  private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO =
      CALL_STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));

  private static final MethodHandle MMAP;
  private static final MethodHandle MUNMAP;
  private static final MethodHandle MADVISE;

  static {
    MethodHandle mmap = null;
    MethodHandle munmap = null;
    MethodHandle madvise = null;
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    if (os.startsWith("linux") && ValueLayout.ADDRESS.byteSize() == 8) {
      try {
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        mmap =
            linker.downcallHandle(
                find(libc, "mmap"),
                FunctionDescriptor.of(
                    ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_LONG),
                errno);
        munmap =
            linker.downcallHandle(
                find(libc, "munmap"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
                errno);
        madvise =
            linker.downcallHandle(
                find(libc, "madvise"),
                FunctionDescriptor.of(
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
                errno);
      } catch (RuntimeException | LinkageError e) {
        LOG.warn("anonymous mmap unavailable, guest RAM falls back to committed Arena memory: {}", e.toString());
        mmap = munmap = madvise = null;
      }
    }
    MMAP = mmap;
    MUNMAP = munmap;
    MADVISE = madvise;
  }

  private NativeMemory() {}

  private static MemorySegment find(SymbolLookup lookup, String name) {
    Optional<MemorySegment> symbol = lookup.find(name);
    return symbol.orElseThrow(() -> new UnsupportedOperationException("no symbol " + name));
  }

  static boolean isAvailable() {
    return MMAP != null;
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
      advise(address, length, MADV_HUGEPAGE);
    }
    return address;
  }

  /**
   * Faults in every page of the range writable without touching its content (madvise
   * MADV_POPULATE_WRITE, Linux 5.14+, QEMU's -mem-prealloc); false when the kernel refused.
   */
  static boolean populate(long address, long length) {
    return advise(address, length, MADV_POPULATE_WRITE);
  }

  private static boolean advise(long address, long length, int advice) {
    try (Arena scratch = Arena.ofConfined()) {
      MemorySegment state = scratch.allocate(CALL_STATE);
      int rc = (int) MADVISE.invokeExact(state, address, length, advice);
      if (rc != 0) {
        LOG.debug("madvise({}) failed: errno {}", advice, (int) ERRNO.get(state, 0L));
        return false;
      }
      return true;
    } catch (Error | RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("madvise call failed", t);
    }
  }

  private static long mapAligned(long length, long alignment) {
    long slack = alignment > 4096 ? alignment : 0;
    long mapped = length + slack;
    long base;
    try (Arena scratch = Arena.ofConfined()) {
      MemorySegment state = scratch.allocate(CALL_STATE);
      base =
          (long)
              MMAP.invokeExact(
                  state, 0L, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
      if (base == MAP_FAILED) {
        throw new OutOfMemoryError("mmap of " + mapped + " bytes failed: errno " + (int) ERRNO.get(state, 0L));
      }
    } catch (Error | RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("mmap call failed", t);
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
    try (Arena scratch = Arena.ofConfined()) {
      MemorySegment state = scratch.allocate(CALL_STATE);
      int rc = (int) MUNMAP.invokeExact(state, address, length);
      if (rc != 0) {
        LOG.error("munmap({}, {}) failed: errno {}", Long.toHexString(address), length, (int) ERRNO.get(state, 0L));
      }
    } catch (Error | RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("munmap call failed", t);
    }
  }

  /** Drops the pages of the range: the next read of them sees zeros (private anonymous mapping). */
  static void dontNeed(long address, long length) {
    try (Arena scratch = Arena.ofConfined()) {
      MemorySegment state = scratch.allocate(CALL_STATE);
      int rc = (int) MADVISE.invokeExact(state, address, length, MADV_DONTNEED);
      if (rc != 0) {
        throw new IllegalStateException("madvise(DONTNEED) failed: errno " + (int) ERRNO.get(state, 0L));
      }
    } catch (Error | RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("madvise call failed", t);
    }
  }
}
