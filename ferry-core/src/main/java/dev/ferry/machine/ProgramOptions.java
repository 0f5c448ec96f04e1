package dev.ferry.machine;

/**
 * Host-side settings of the built-in guest programs.
 *
 * @param pagesPerStep pages a step touches (stress, fill, random, workingset)
 * @param dirtyRateBytesPerSec target dirty rate of {@code random}, in bytes of whole pages per second of virtual time
 * @param seed initial random seed of {@code random} and {@code fill} (then kept in a register)
 * @param stressRateBytesPerSec how fast {@code stress} sweeps: pages touched per second of virtual
 *     time, times 4096. A real vCPU has a speed too; an unpaced sweep would dirty RAM faster than any
 *     link can carry it and no precopy could converge (QEMU's own test forces convergence with a
 *     huge downtime limit instead). Setting a dirty rate sets this too.
 * @param workingSetBytes size of {@code workingset}'s working set (a multiple of 4096, positive)
 * @param workingSetBaseBytes where the working set starts, as an offset into all RAM blocks laid
 *     end to end (a multiple of 4096)
 * @param workingSetRateBytesPerSec how fast {@code workingset} increments, pages per second of
 *     virtual time times 4096; 0 (the default) = as fast as the vCPU goes. Setting a dirty rate
 *     sets this too.
 */
public record ProgramOptions(
    int pagesPerStep,
    long dirtyRateBytesPerSec,
    long seed,
    long stressRateBytesPerSec,
    long workingSetBytes,
    long workingSetBaseBytes,
    long workingSetRateBytesPerSec) {
  public static final int DEFAULT_PAGES_PER_STEP = 4096;
  public static final long DEFAULT_DIRTY_RATE_BYTES_PER_SEC = 64L << 20;
  /**
   * stress sweeps 512 MiB of pages per second by default (a 1 GiB guest prints B every two
   * seconds): well below loopback bandwidth even on a loaded 2-core machine, so precopy converges.
   */
  public static final long DEFAULT_STRESS_RATE_BYTES_PER_SEC = 512L << 20;
  /** workingset's working set: 64 MiB, as QEMU's migration benchmark guests default to. */
  public static final long DEFAULT_WORKING_SET_BYTES = 64L << 20;

  private static final long PAGE = 4096;

  public ProgramOptions(int pagesPerStep, long dirtyRateBytesPerSec, long seed) {
    this(pagesPerStep, dirtyRateBytesPerSec, seed, DEFAULT_STRESS_RATE_BYTES_PER_SEC);
  }

  public ProgramOptions(int pagesPerStep, long dirtyRateBytesPerSec, long seed, long stressRateBytesPerSec) {
    this(pagesPerStep, dirtyRateBytesPerSec, seed, stressRateBytesPerSec, DEFAULT_WORKING_SET_BYTES, 0, 0);
  }

  public ProgramOptions {
    if (pagesPerStep <= 0) {
      throw new IllegalArgumentException("pagesPerStep must be positive: " + pagesPerStep);
    }
    if (stressRateBytesPerSec <= 0) {
      throw new IllegalArgumentException("stress rate must be positive: " + stressRateBytesPerSec);
    }
    if (dirtyRateBytesPerSec < 0) {
      throw new IllegalArgumentException("dirty rate must not be negative: " + dirtyRateBytesPerSec);
    }
    if (workingSetBytes <= 0 || workingSetBytes % PAGE != 0) {
      throw new IllegalArgumentException("working set must be a positive multiple of 4096 bytes: " + workingSetBytes);
    }
    if (workingSetBaseBytes < 0 || workingSetBaseBytes % PAGE != 0) {
      throw new IllegalArgumentException("working set base must be a non-negative multiple of 4096 bytes: " + workingSetBaseBytes);
    }
    if (workingSetRateBytesPerSec < 0) {
      throw new IllegalArgumentException("working set rate must not be negative: " + workingSetRateBytesPerSec);
    }
  }

  public static ProgramOptions defaults() {
    return new ProgramOptions(DEFAULT_PAGES_PER_STEP, DEFAULT_DIRTY_RATE_BYTES_PER_SEC, 0x5eed);
  }

  public ProgramOptions withPagesPerStep(int n) {
    return new ProgramOptions(n, dirtyRateBytesPerSec, seed, stressRateBytesPerSec, workingSetBytes, workingSetBaseBytes, workingSetRateBytesPerSec);
  }

  /** Sets random's dirty rate, and paces stress and workingset at it too (when positive). */
  public ProgramOptions withDirtyRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, rate, seed, rate > 0 ? rate : stressRateBytesPerSec, workingSetBytes, workingSetBaseBytes,
        rate > 0 ? rate : workingSetRateBytesPerSec);
  }

  public ProgramOptions withSeed(long s) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, s, stressRateBytesPerSec, workingSetBytes, workingSetBaseBytes, workingSetRateBytesPerSec);
  }

  public ProgramOptions withStressRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, seed, rate, workingSetBytes, workingSetBaseBytes, workingSetRateBytesPerSec);
  }

  public ProgramOptions withWorkingSet(long bytes, long baseBytes) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, seed, stressRateBytesPerSec, bytes, baseBytes, workingSetRateBytesPerSec);
  }

  public ProgramOptions withWorkingSetRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, seed, stressRateBytesPerSec, workingSetBytes, workingSetBaseBytes, rate);
  }
}
