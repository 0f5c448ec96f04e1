package dev.ferry.migration;

import dev.ferry.ram.RamBlock;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;
import java.util.zip.CRC32C;

/**
 * The guest's dirty rate measured by page sampling, as QEMU 5.2+'s {@code calc-dirty-rate} does in
 * its default {@code page-sampling} mode: pick {@code samplePagesPerGiB} random target pages per
 * GiB of every RAM block, hash each, let the guest run for the period, hash them again, and count
 * the pages whose hash changed. The rate is {@code changed / sampled × RAM size (MiB) / period}, in
 * MiB/s as QEMU reports it ({@code dirty-rate}, "MB/s").
 *
 * <p>It reads RAM without the dirty log, so it neither disturbs nor depends on a migration running
 * at the same time (QEMU's sampling mode has the same property). A never-touched page reads as
 * zeros (the kernel maps its zero page) and costs no memory. One measurement runs at a time; {@link
 * #start} while one is measuring is refused, as QEMU refuses it.
 */
public final class DirtyRateMeasurement {
  /** QEMU's {@code DirtyRateStatus}. */
  public enum Status {
    UNSTARTED("unstarted"),
    MEASURING("measuring"),
    MEASURED("measured");

    private final String qapiName;

    Status(String qapiName) {
      this.qapiName = qapiName;
    }

    public String qapiName() {
      return qapiName;
    }
  }

  /** QEMU's default {@code sample-pages} (per GiB) and its accepted range. */
  public static final int DEFAULT_SAMPLE_PAGES_PER_GIB = 512;

  public static final int MIN_SAMPLE_PAGES_PER_GIB = 128;
  public static final int MAX_SAMPLE_PAGES_PER_GIB = 4096;

  /** QEMU's range of {@code calc-time} (seconds). */
  public static final long MIN_CALC_TIME_S = 1;

  public static final long MAX_CALC_TIME_S = 60;

  private static final int TARGET_PAGE = 4096;

  /**
   * What {@code query-dirty-rate} reports.
   *
   * @param startTimeS wall-clock start (seconds since the epoch, as QEMU's {@code start-time})
   * @param dirtyRateMiBPerSec null until measured
   */
  public record Result(
      Status status,
      long startTimeS,
      long calcTimeS,
      int samplePagesPerGiB,
      Long dirtyRateMiBPerSec,
      long sampledPages,
      long dirtySampledPages) {}

  private final List<RamBlock> blocks;
  private final LongSupplier seed;
  private volatile Result last = new Result(Status.UNSTARTED, 0, 0, DEFAULT_SAMPLE_PAGES_PER_GIB, null, 0, 0);
  private Thread worker;

  /** @param seed the sample positions' seed for each measurement (tests fix it) */
  public DirtyRateMeasurement(List<RamBlock> blocks, LongSupplier seed) {
    this.blocks = List.copyOf(blocks);
    this.seed = Objects.requireNonNull(seed, "seed");
  }

  public DirtyRateMeasurement(List<RamBlock> blocks) {
    this(blocks, System::nanoTime);
  }

  /**
   * Starts a measurement over {@code calcTimeS} seconds in the background.
   *
   * @throws IllegalArgumentException for a time or sample count out of QEMU's range
   * @throws IllegalStateException when a measurement is running
   */
  public synchronized void start(long calcTimeS, int samplePagesPerGiB) {
    if (calcTimeS < MIN_CALC_TIME_S || calcTimeS > MAX_CALC_TIME_S) {
      throw new IllegalArgumentException("Invalid calc-time: " + calcTimeS + " (must be " + MIN_CALC_TIME_S + " to " + MAX_CALC_TIME_S + " seconds)");
    }
    if (samplePagesPerGiB < MIN_SAMPLE_PAGES_PER_GIB || samplePagesPerGiB > MAX_SAMPLE_PAGES_PER_GIB) {
      throw new IllegalArgumentException("Invalid sample-pages: " + samplePagesPerGiB + " (must be "
          + MIN_SAMPLE_PAGES_PER_GIB + " to " + MAX_SAMPLE_PAGES_PER_GIB + ")");
    }
    if (last.status() == Status.MEASURING) {
      throw new IllegalStateException("the dirty rate is already being measured");
    }
    long startS = System.currentTimeMillis() / 1000;
    last = new Result(Status.MEASURING, startS, calcTimeS, samplePagesPerGiB, null, 0, 0);
    long s = seed.getAsLong();
    worker = Thread.ofPlatform().name("dirty-rate").daemon(true).start(() -> {
      Result r;
      try {
        r = measure(calcTimeS * 1000, samplePagesPerGiB, s, startS, calcTimeS);
      } catch (InterruptedException e) {
        r = new Result(Status.MEASURED, startS, calcTimeS, samplePagesPerGiB, null, 0, 0);
      }
      last = r;
    });
  }

  /** The current or last measurement. */
  public Result query() {
    return last;
  }

  /** Waits for a running measurement to end (tests). */
  public void await() throws InterruptedException {
    Thread t;
    synchronized (this) {
      t = worker;
    }
    if (t != null) {
      t.join();
    }
  }

  /** Stops a running measurement (the machine is closing). */
  public void cancel() {
    Thread t;
    synchronized (this) {
      t = worker;
    }
    if (t != null) {
      t.interrupt();
    }
  }

  /** One measurement, synchronously: sample, wait {@code periodMs}, sample again. */
  Result measure(long periodMs, int samplePagesPerGiB, long seedValue, long startS, long calcTimeS)
      throws InterruptedException {
    SplittableRandom random = new SplittableRandom(seedValue);
    List<MemorySegment> pages = new ArrayList<>();
    long totalBytes = 0;
    for (RamBlock b : blocks) {
      long pageCount = b.usedLength() / TARGET_PAGE;
      if (pageCount == 0) {
        continue;
      }
      totalBytes += b.usedLength();
      long n = Math.max(1, samplePagesPerGiB * b.usedLength() / (1L << 30));
      n = Math.min(n, pageCount);
      for (long i = 0; i < n; i++) {
        pages.add(b.memory().asSlice(random.nextLong(pageCount) * TARGET_PAGE, TARGET_PAGE));
      }
    }
    long[] before = new long[pages.size()];
    for (int i = 0; i < before.length; i++) {
      before[i] = hash(pages.get(i));
    }
    long t0 = System.nanoTime();
    Thread.sleep(periodMs);
    long elapsedMs = Math.max(1, (System.nanoTime() - t0) / 1_000_000);
    long dirty = 0;
    for (int i = 0; i < before.length; i++) {
      if (hash(pages.get(i)) != before[i]) {
        dirty++;
      }
    }
    long totalMiB = totalBytes >> 20;
    Long rate = pages.isEmpty() ? 0L : dirty * totalMiB * 1000 / ((long) pages.size() * elapsedMs);
    return new Result(Status.MEASURED, startS, calcTimeS, samplePagesPerGiB, rate, pages.size(), dirty);
  }

  private static long hash(MemorySegment page) {
    CRC32C crc = new CRC32C();
    crc.update(page.asByteBuffer());
    return crc.getValue();
  }
}
