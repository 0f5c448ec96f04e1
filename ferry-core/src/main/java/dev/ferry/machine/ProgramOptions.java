package dev.ferry.machine;

/**
 * Host-side settings of the built-in guest programs.
 *
 * @param pagesPerStep pages a step touches (stress, fill, random)
 * @param dirtyRateBytesPerSec target dirty rate of {@code random}, in bytes of whole pages per second of virtual time
 * @param seed initial random seed of {@code random} and {@code fill} (then kept in a register)
 * @param stressRateBytesPerSec how fast {@code stress} sweeps: pages touched per second of virtual
 *     time, times 4096. A real vCPU has a speed too; an unpaced sweep would dirty RAM faster than any
 *     link can carry it and no precopy could converge (QEMU's own test forces convergence with a
 *     huge downtime limit instead). Setting a dirty rate sets this too.
 */
public record ProgramOptions(int pagesPerStep, long dirtyRateBytesPerSec, long seed, long stressRateBytesPerSec) {
  public static final int DEFAULT_PAGES_PER_STEP = 4096;
  public static final long DEFAULT_DIRTY_RATE_BYTES_PER_SEC = 64L << 20;
  /**
   * stress sweeps 512 MiB of pages per second by default (a 1 GiB guest prints B every two
   * seconds): well below loopback bandwidth even on a loaded 2-core machine, so precopy converges.
   */
  public static final long DEFAULT_STRESS_RATE_BYTES_PER_SEC = 512L << 20;

  public ProgramOptions(int pagesPerStep, long dirtyRateBytesPerSec, long seed) {
    this(pagesPerStep, dirtyRateBytesPerSec, seed, DEFAULT_STRESS_RATE_BYTES_PER_SEC);
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
  }

  public static ProgramOptions defaults() {
    return new ProgramOptions(DEFAULT_PAGES_PER_STEP, DEFAULT_DIRTY_RATE_BYTES_PER_SEC, 0x5eed);
  }

  public ProgramOptions withPagesPerStep(int n) {
    return new ProgramOptions(n, dirtyRateBytesPerSec, seed, stressRateBytesPerSec);
  }

  public ProgramOptions withDirtyRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, rate, seed, rate > 0 ? rate : stressRateBytesPerSec);
  }

  public ProgramOptions withSeed(long s) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, s, stressRateBytesPerSec);
  }

  public ProgramOptions withStressRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, seed, rate);
  }
}
