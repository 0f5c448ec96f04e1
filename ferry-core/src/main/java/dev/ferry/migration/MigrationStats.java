package dev.ferry.migration;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of one outgoing migration, as QEMU's query-migrate reports them. Writers (the migration
 * thread, the RAM saver) bump them; readers (the monitor) take a {@link #snapshot}.
 *
 * <p>The RAM page counts are never touched per page: the saver counts in plain fields of its own and
 * publishes its totals once per iteration ({@link #published}), one volatile write of an immutable
 * {@link dev.ferry.ram.RamSaveListener.Counts}; a snapshot shows them at most one iteration old, all
 * from the same moment. The other counters change per iteration or per sync, not per page.
 */
public final class MigrationStats implements dev.ferry.ram.RamSaveListener {
  private volatile Counts ram = Counts.ZERO;
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
  volatile double bandwidthBytesPerMs;
  volatile long pagesPerSecond;
  volatile long startNs;
  volatile long setupTimeMs;
  volatile long downtimeMs = -1;
  volatile long expectedDowntimeMs;
  volatile long endNs;
  /** The guest's CPU throttle (auto-converge), 0 when none. */
  volatile int cpuThrottlePercentage;
  /**
   * Convergence figures as of the last sync or downtime-guard check (the dirty rate, the guard's
   * refusals: {@link SwitchOverPolicy} owns them); null before the first.
   */
  volatile SwitchOverPolicy.Convergence convergence;

  private volatile java.util.function.LongConsumer passListener = p -> {};

  /** Called with the pass number at each dirty sync (the MIGRATION_PASS event). */
  public void onPass(java.util.function.LongConsumer l) {
    passListener = l;
  }

  @Override
  public void published(Counts totals) {
    ram = totals;
  }

  @Override
  public void sync(long pass, long newlyDirtyPages) {
    addDirtySync(newlyDirtyPages);
    passes.set(pass);
    passListener.accept(pass);
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
      long guardExpectedDowntimeMs,
      boolean guardRefused,
      boolean converging,
      long dirtyBytesPerSec,
      long transferBytesPerSec,
      String convergenceReason) {}

  public Snapshot snapshot(long transferredBytes, long nowNs) {
    long end = endNs != 0 ? endNs : nowNs;
    long totalMs = startNs == 0 ? 0 : (end - startNs) / 1_000_000;
    SwitchOverPolicy.Convergence c = convergence;
    Counts r = ram;
    return new Snapshot(
        transferredBytes,
        remainingBytes,
        totalRamBytes,
        r.zeroPages(),
        r.normalPages(),
        r.normalBytes(),
        c == null ? 0 : c.dirtyPagesPerSec(),
        bandwidthBytesPerMs * 8 * 1000 / 1e6,
        dirtySyncCount.get(),
        pagesPerSecond,
        precopyBytes.get(),
        downtimeBytes.get(),
        postcopyBytes.get(),
        postcopyRequests.get(),
        r.xbzrlePages(),
        r.xbzrleBytes(),
        r.xbzrleCacheMisses(),
        r.xbzrleOverflows(),
        totalMs,
        setupTimeMs,
        downtimeMs,
        expectedDowntimeMs,
        passes.get(),
        cpuThrottlePercentage,
        c == null ? 0 : c.guardRefusals(),
        c == null ? -1 : c.guardExpectedDowntimeMs(),
        c != null && c.guardRefused(),
        c == null || c.converging(),
        c == null ? 0 : c.dirtyBytesPerSec(),
        c == null ? 0 : c.transferBytesPerSec(),
        c == null ? null : c.reason());
  }
}
