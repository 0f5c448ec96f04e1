package dev.ferry.machine;

/**
 * Host-side settings of the built-in guest programs.
 *
 * @param pagesPerStep pages a step touches (stress, fill, random)
 * @param dirtyRateBytesPerSec target dirty rate of {@code random}, in bytes of whole pages per second of virtual time
 * @param seed initial random seed of {@code random} and {@code fill} (then kept in a register)
 */
public record ProgramOptions(int pagesPerStep, long dirtyRateBytesPerSec, long seed) {
  public static final int DEFAULT_PAGES_PER_STEP = 4096;
  public static final long DEFAULT_DIRTY_RATE_BYTES_PER_SEC = 64L << 20;

  public ProgramOptions {
    if (pagesPerStep <= 0) {
      throw new IllegalArgumentException("pagesPerStep must be positive: " + pagesPerStep);
    }
    if (dirtyRateBytesPerSec < 0) {
      throw new IllegalArgumentException("dirty rate must not be negative: " + dirtyRateBytesPerSec);
    }
  }

  public static ProgramOptions defaults() {
    return new ProgramOptions(DEFAULT_PAGES_PER_STEP, DEFAULT_DIRTY_RATE_BYTES_PER_SEC, 0x5eed);
  }

  public ProgramOptions withPagesPerStep(int n) {
    return new ProgramOptions(n, dirtyRateBytesPerSec, seed);
  }

  public ProgramOptions withDirtyRateBytesPerSec(long rate) {
    return new ProgramOptions(pagesPerStep, rate, seed);
  }

  public ProgramOptions withSeed(long s) {
    return new ProgramOptions(pagesPerStep, dirtyRateBytesPerSec, s);
  }
}
