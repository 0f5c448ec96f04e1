package dev.ferry.migration;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of one outgoing migration, as QEMU's query-migrate reports them. Writers (the migration
 * thread, the RAM saver) bump them; readers (the monitor) take a {@link #snapshot}.
 */
public final class MigrationStats implements dev.ferry.ram.RamSaveListener {
  final AtomicLong zeroPages = new AtomicLong();
  final AtomicLong normalPages = new AtomicLong();
  final AtomicLong normalBytes = new AtomicLong();
  final AtomicLong xbzrlePages = new AtomicLong();
  final AtomicLong xbzrleBytes = new AtomicLong();
  final AtomicLong xbzrleCacheMiss = new AtomicLong();
  final AtomicLong xbzrleOverflow = new AtomicLong();
  final AtomicLong dirtySyncCount = new AtomicLong();
  final AtomicLong postcopyRequests = new AtomicLong();
  /** Stream bytes by phase. */
  final AtomicLong precopyBytes = new AtomicLong();
  final AtomicLong downtimeBytes = new AtomicLong();
  final AtomicLong postcopyBytes = new AtomicLong();
  final AtomicLong passes = new AtomicLong();
  /** Pages the last dirty sync found dirty (for the dirty-pages rate). */
  final AtomicLong lastSyncDirtyPages = new AtomicLong();

  volatile long totalRamBytes;
  volatile long remainingBytes;
  volatile long dirtyPagesRate;
  volatile double bandwidthBytesPerMs;
  volatile long pagesPerSecond;
  volatile long startNs;
  volatile long setupTimeMs;
  volatile long downtimeMs = -1;
  volatile long expectedDowntimeMs;
  volatile long endNs;
  /** The guest's CPU throttle (auto-converge), 0 when none. */
  volatile int cpuThrottlePercentage;
  /** Switch-overs the downtime guard called off (the guest ran on). */
  final AtomicLong downtimeGuardRefusals = new AtomicLong();
  /** Convergence figures as of the last sync; null before the first. */
  volatile SwitchOverPolicy.Convergence convergence;

  private volatile java.util.function.LongConsumer passListener = p -> {};
  private volatile java.util.function.LongSupplier multifdBytes = () -> 0;

  /** Where {@code multifd-bytes} comes from (the migration's multifd channels). */
  public void multifdBytes(java.util.function.LongSupplier source) {
    multifdBytes = source;
  }

  /** Called with the pass number at each dirty sync (the MIGRATION_PASS event). */
  public void onPass(java.util.function.LongConsumer l) {
    passListener = l;
  }

  @Override
  public void zeroPage() {
    addZeroPage();
  }

  @Override
  public void normalPage(int bytes) {
    addNormalPage(bytes);
  }

  @Override
  public void xbzrlePage(int encodedBytes) {
    addXbzrlePage(encodedBytes);
  }

  @Override
  public void xbzrleCacheMiss() {
    addXbzrleCacheMiss();
  }

  @Override
  public void xbzrleOverflow() {
    addXbzrleOverflow();
  }

  @Override
  public void sync(long pass, long newlyDirtyPages) {
    addDirtySync(newlyDirtyPages);
    passes.set(pass);
    passListener.accept(pass);
  }

  public void addZeroPage() {
    zeroPages.incrementAndGet();
  }

  public void addNormalPage(int bytes) {
    normalPages.incrementAndGet();
    normalBytes.addAndGet(bytes);
  }

  public void addXbzrlePage(int encodedBytes) {
    xbzrlePages.incrementAndGet();
    xbzrleBytes.addAndGet(encodedBytes);
  }

  public void addXbzrleCacheMiss() {
    xbzrleCacheMiss.incrementAndGet();
  }

  public void addXbzrleOverflow() {
    xbzrleOverflow.incrementAndGet();
  }

  /** A dirty-log sync that found {@code dirtyPages} newly dirtied pages. */
  public void addDirtySync(long dirtyPages) {
    lastSyncDirtyPages.set(dirtyPages);
    dirtySyncCount.incrementAndGet();
  }


  public void addPostcopyRequest() {
    postcopyRequests.incrementAndGet();
  }

  public void totalRamBytes(long v) {
    totalRamBytes = v;
  }

  public void remainingBytes(long v) {
    remainingBytes = v;
  }

  public void dirtyPagesRate(long pagesPerSec) {
    dirtyPagesRate = pagesPerSec;
  }

  public long dirtySyncCount() {
    return dirtySyncCount.get();
  }

  public long passes() {
    return passes.get();
  }

  /**
   * A consistent-enough copy for reporting.
   *
   * @param transferredBytes stream bytes written so far
   * @param totalTimeMs since the start (or until the end)
   */
  public record Snapshot(
      long transferredBytes,
      long remainingBytes,
      long totalRamBytes,
      long duplicatePages,
      long normalPages,
      long normalBytes,
      long dirtyPagesRate,
      double mbps,
      long dirtySyncCount,
      long pagesPerSecond,
      long precopyBytes,
      long downtimeBytes,
      long postcopyBytes,
      long postcopyRequests,
      long xbzrlePages,
      long xbzrleBytes,
      long xbzrleCacheMiss,
      long xbzrleOverflow,
      long totalTimeMs,
      long setupTimeMs,
      long downtimeMs,
      long expectedDowntimeMs,
      long passes,
      int cpuThrottlePercentage,
      long downtimeGuardRefusals,
      boolean converging,
      long dirtyBytesPerSec,
      long transferBytesPerSec,
      String convergenceReason,
      long multifdBytes) {}

  public Snapshot snapshot(long transferredBytes, long nowNs) {
    long end = endNs != 0 ? endNs : nowNs;
    long totalMs = startNs == 0 ? 0 : (end - startNs) / 1_000_000;
    SwitchOverPolicy.Convergence c = convergence;
    return new Snapshot(
        transferredBytes,
        remainingBytes,
        totalRamBytes,
        zeroPages.get(),
        normalPages.get(),
        normalBytes.get(),
        dirtyPagesRate,
        bandwidthBytesPerMs * 8 * 1000 / 1e6,
        dirtySyncCount.get(),
        pagesPerSecond,
        precopyBytes.get(),
        downtimeBytes.get(),
        postcopyBytes.get(),
        postcopyRequests.get(),
        xbzrlePages.get(),
        xbzrleBytes.get(),
        xbzrleCacheMiss.get(),
        xbzrleOverflow.get(),
        totalMs,
        setupTimeMs,
        downtimeMs,
        expectedDowntimeMs,
        passes.get(),
        cpuThrottlePercentage,
        downtimeGuardRefusals.get(),
        c == null || c.converging(),
        c == null ? 0 : c.dirtyBytesPerSec(),
        c == null ? 0 : c.transferBytesPerSec(),
        c == null ? null : c.reason(),
        multifdBytes.getAsLong());
  }
}
