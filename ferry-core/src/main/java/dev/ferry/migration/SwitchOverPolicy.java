package dev.ferry.migration;

import dev.ferry.stream.StreamHeader;

/**
 * When an outgoing precopy migration syncs the dirty log, stops the guest, switches to postcopy,
 * throttles the guest's CPUs or gives up. Pure: the migration thread feeds it figures (clock
 * readings, pending and dirtied bytes, bytes sent, the measured rate, the parameters of the moment)
 * and applies what it answers; it has no clock, thread or I/O of its own, so tests drive it with a
 * fake clock and synthetic figures.
 *
 * <p><b>Threshold (QEMU).</b> The guest may stop once the pending bytes fit in {@code rate ×
 * downtime-limit}. Ferry treats the limit as the upper bound only: once the pending bytes fit, it
 * keeps iterating while each sync still shrinks the pending set by at least {@value
 * #KEEP_ITERATING_RATIO_PERCENT}% (up to {@value #MAX_EXTRA_SYNCS} extra syncs), and stops at once
 * when what is left takes under {@value #SMALL_SEND_MS} ms to send. The parameters are read at every
 * check, so a {@code downtime-limit} raised mid-migration (tools ramp it stepwise) counts at the next.
 *
 * <p><b>Downtime guard (Ferry).</b> QEMU stops the guest once the estimate fits, even when the rate
 * has fallen since. Ferry measures the pending bytes again with the guest stopped ({@link
 * #switchOverFits}); when they would take longer than {@code downtime-limit} at the rate measured
 * last, the guest runs on and precopy goes on iterating.
 *
 * <p><b>Auto-converge (QEMU 7.2's rule).</b> At each sync at least {@value #THROTTLE_PERIOD_MS} ms
 * after the period began: when the bytes dirtied in the period exceed {@code
 * throttle-trigger-threshold}% of the bytes sent in it, a strike; at the second strike (not
 * necessarily consecutive) the throttle starts at {@code cpu-throttle-initial} or grows by {@code
 * cpu-throttle-increment} (with {@code cpu-throttle-tailslow}: by no more than what brings the
 * dirtying down to the threshold), capped at {@code max-cpu-throttle}; then the strikes reset. A new
 * period starts at each such check.
 *
 * <p><b>Not converging (Ferry).</b> Precopy is "not converging" once the pending bytes after a sync
 * are above the threshold and no sync of the last {@value #STALL_SYNCS} made a new low (by at least
 * {@value #PROGRESS_PERCENT}%): the dirty set no longer shrinks and the expected downtime stays above
 * the limit. The verdict comes with the figures that show why (dirty rate vs transfer rate). With
 * {@code postcopy-ram} and {@code ferry-auto-postcopy} on, it switches to postcopy.
 *
 * <p><b>Budget (Ferry).</b> {@code ferry-precopy-max-passes}, {@code ferry-precopy-max-bytes} and
 * {@code ferry-precopy-max-time} bound precopy; past one of them the migration switches to postcopy
 * when it may, else fails with the reason. A {@code file:} migration whose byte budget is unset gets
 * {@value #FILE_BUDGET_RAM_MULTIPLE} × RAM, so the file stays under four times RAM (the final part
 * adds at most RAM and device state).
 */
final class SwitchOverPolicy {
  static final int KEEP_ITERATING_RATIO_PERCENT = 10;
  static final int MAX_EXTRA_SYNCS = 40;
  static final int SMALL_SEND_MS = 2;
  static final long THROTTLE_PERIOD_MS = 1000;
  /** QEMU: the dirty rate must be high at two checks before the throttle moves. */
  static final int THROTTLE_STRIKES = 2;
  static final int STALL_SYNCS = 4;
  static final int PROGRESS_PERCENT = 5;
  static final int FILE_BUDGET_RAM_MULTIPLE = 3;
  private static final long PAGE = StreamHeader.TARGET_PAGE_SIZE;

  /** What the migration thread does next. */
  enum Action {
    /** Send more pages. */
    ITERATE,
    /** Sync the dirty log (the pending estimate fits), then ask {@link #afterSync}. */
    SYNC,
    /** Stop the guest and complete as precopy (subject to {@link #switchOverFits}). */
    COMPLETE,
    /** Switch to postcopy. */
    POSTCOPY,
    /** Fail the migration with {@link Decision#reason()}. */
    FAIL
  }

  record Decision(Action action, String reason) {
    static final Decision ITERATE = new Decision(Action.ITERATE, null);
    static final Decision SYNC = new Decision(Action.SYNC, null);
  }

  /**
   * The convergence figures of the last sync and the downtime guard's last check, for query-migrate,
   * HMP and the progress line. The policy is their one owner: the dirty rate is computed here only.
   *
   * @param guardRefusals switch-overs the downtime guard called off
   * @param guardExpectedDowntimeMs what the rest would have taken at the guard's last check, -1 before one
   * @param guardRefused whether the last check refused
   */
  record Convergence(boolean converging, long dirtyBytesPerSec, long transferBytesPerSec, int syncsWithoutProgress,
      String reason, int guardRefusals, long guardExpectedDowntimeMs, boolean guardRefused) {
    /** QEMU's {@code dirty-pages-rate}: pages dirtied per second between the last two syncs. */
    long dirtyPagesPerSec() {
      return dirtyBytesPerSec / PAGE;
    }
  }

  private final boolean autoConverge;
  private final boolean postcopyRam;
  private final boolean autoPostcopy;
  private final boolean fileTarget;
  private final long startNs;
  private long totalRamBytes;

  private long lastFitPending = Long.MAX_VALUE;
  private int extraSyncs;
  private long bestPending = Long.MAX_VALUE;
  private int syncsWithoutProgress;
  private long syncs;
  private long lastSyncNs;
  private long lastSyncTransferred;
  private long dirtyBytesPerSec;
  private long transferBytesPerSec;
  private boolean notConverging;
  private int guardRefusals;
  private long guardExpectedDowntimeMs = -1;
  private boolean guardRefused;

  private long periodStartNs;
  private long periodStartTransferred;
  private long periodDirtyPages;
  private int strikes;
  private int throttlePercent;

  /**
   * @param nowNs when the migration started (budget time and the first throttle period count from it)
   * @param fileTarget the stream goes to a {@code file:} (a default byte budget applies)
   */
  SwitchOverPolicy(long nowNs, boolean autoConverge, boolean postcopyRam, boolean autoPostcopy, boolean fileTarget) {
    this.startNs = nowNs;
    this.autoConverge = autoConverge;
    this.postcopyRam = postcopyRam;
    this.autoPostcopy = autoPostcopy;
    this.fileTarget = fileTarget;
    this.periodStartNs = nowNs;
    this.lastSyncNs = nowNs;
  }

  /** The guest's RAM (the file budget's unit); known once setup ran. */
  void totalRamBytes(long bytes) {
    totalRamBytes = bytes;
  }

  static long thresholdBytes(double bytesPerMs, MigrationParameters p) {
    return (long) (bytesPerMs * p.downtimeLimitMs());
  }

  private static long smallBytes(double bytesPerMs) {
    return (long) Math.max(64 * PAGE, bytesPerMs * SMALL_SEND_MS);
  }

  /** The byte budget in force: the parameter, else for {@code file:} a multiple of RAM, else none (0). */
  long byteBudget(MigrationParameters p) {
    if (p.precopyMaxBytes() > 0) {
      return p.precopyMaxBytes();
    }
    return fileTarget && totalRamBytes > 0 ? FILE_BUDGET_RAM_MULTIPLE * totalRamBytes : 0;
  }

  /**
   * At every turn of the loop, before more pages go out.
   *
   * @param pendingEstimate what is left of the current pass (no sync)
   * @param bytesPerMs the measured rate
   * @param sentBytes stream bytes sent so far (what a {@code file:} holds)
   * @param postcopyRequested {@code migrate-start-postcopy} was given
   */
  Decision check(long nowNs, long pendingEstimate, double bytesPerMs, long sentBytes, MigrationParameters p,
      boolean postcopyRequested) {
    long threshold = thresholdBytes(bytesPerMs, p);
    if (postcopyRequested && postcopyRam && pendingEstimate > threshold) {
      return new Decision(Action.POSTCOPY, "migrate-start-postcopy");
    }
    // Sync when the estimate fits; after the first fit, only once a round has drained the bitmap,
    // so that each sync measures what the guest dirtied during one whole round.
    if (pendingEstimate <= threshold && (lastFitPending == Long.MAX_VALUE || pendingEstimate <= smallBytes(bytesPerMs))) {
      return Decision.SYNC;
    }
    String over = overBudget(nowNs, sentBytes, p);
    if (over != null) {
      return giveUp(over);
    }
    return Decision.ITERATE;
  }

  /**
   * After a dirty sync.
   *
   * @param pending the exact pending bytes after the sync
   * @param dirtiedPages pages the sync found newly dirtied
   * @param transferredBytes stream bytes sent so far
   */
  Decision afterSync(long nowNs, long pending, long dirtiedPages, long transferredBytes, double bytesPerMs,
      MigrationParameters p) {
    syncs++;
    long sinceLastNs = nowNs - lastSyncNs;
    if (sinceLastNs > 0) {
      dirtyBytesPerSec = (long) (dirtiedPages * PAGE * 1e9 / sinceLastNs);
      transferBytesPerSec = (long) ((transferredBytes - lastSyncTransferred) * 1e9 / sinceLastNs);
    }
    lastSyncNs = nowNs;
    lastSyncTransferred = transferredBytes;
    autoConverge(nowNs, dirtiedPages, transferredBytes, p);

    long threshold = thresholdBytes(bytesPerMs, p);
    if (pending * 100 < bestPending * (100 - PROGRESS_PERCENT)) {
      bestPending = pending;
      syncsWithoutProgress = 0;
    } else {
      syncsWithoutProgress++;
    }
    notConverging = pending > threshold && syncsWithoutProgress >= STALL_SYNCS;

    if (pending <= threshold) {
      boolean stalled =
          lastFitPending != Long.MAX_VALUE && pending * 100 > lastFitPending * (100 - KEEP_ITERATING_RATIO_PERCENT);
      if (pending <= smallBytes(bytesPerMs) || stalled || extraSyncs >= MAX_EXTRA_SYNCS) {
        return new Decision(Action.COMPLETE, "switch-over");
      }
      lastFitPending = pending;
      extraSyncs++;
      return Decision.ITERATE;
    }
    String over = overBudget(nowNs, transferredBytes, p);
    if (over != null) {
      return giveUp(over);
    }
    if (notConverging && postcopyRam && autoPostcopy) {
      return new Decision(Action.POSTCOPY, "precopy is not converging: " + figures());
    }
    return Decision.ITERATE;
  }

  /**
   * The downtime guard, with the guest stopped: whether {@code pending} (measured after stopping)
   * goes out within {@code downtime-limit} at the rate measured last. When not, the caller lets the
   * guest run on and the policy starts looking for a fit again.
   */
  boolean switchOverFits(long pending, double bytesPerMs, MigrationParameters p) {
    guardExpectedDowntimeMs = bytesPerMs > 0 ? (long) (pending / bytesPerMs) : 0;
    guardRefused = false;
    if (pending <= thresholdBytes(bytesPerMs, p) || pending <= smallBytes(bytesPerMs)) {
      return true;
    }
    guardRefused = true;
    guardRefusals++;
    lastFitPending = Long.MAX_VALUE;
    extraSyncs = 0;
    return false;
  }

  int guardRefusals() {
    return guardRefusals;
  }

  /** The current CPU throttle (0: none). */
  int throttlePercent() {
    return throttlePercent;
  }

  Convergence convergence() {
    return new Convergence(!notConverging, dirtyBytesPerSec, transferBytesPerSec, syncsWithoutProgress,
        notConverging ? "not converging: " + figures() : null, guardRefusals, guardExpectedDowntimeMs, guardRefused);
  }

  boolean notConverging() {
    return notConverging;
  }

  private void autoConverge(long nowNs, long dirtiedPages, long transferredBytes, MigrationParameters p) {
    periodDirtyPages += dirtiedPages;
    if (nowNs - periodStartNs < THROTTLE_PERIOD_MS * 1_000_000) {
      return;
    }
    long dirtyBytes = periodDirtyPages * PAGE;
    long xferBytes = transferredBytes - periodStartTransferred;
    long thresholdBytes = xferBytes * p.throttleTriggerThresholdPercent() / 100;
    if (autoConverge && dirtyBytes > thresholdBytes && ++strikes >= THROTTLE_STRIKES) {
      throttlePercent = nextThrottle(throttlePercent, dirtyBytes, thresholdBytes, p);
      strikes = 0;
    }
    periodStartNs = nowNs;
    periodStartTransferred = transferredBytes;
    periodDirtyPages = 0;
  }

  /** One throttle step up from {@code now} (QEMU's mig_throttle_guest_down). */
  static int nextThrottle(int now, long dirtyBytes, long thresholdBytes, MigrationParameters p) {
    if (now == 0) {
      return Math.min(p.cpuThrottleInitialPercent(), 99);
    }
    int step = p.cpuThrottleIncrementPercent();
    if (p.cpuThrottleTailslow()) {
      int cpuNow = 100 - now;
      int cpuIdeal = (int) (cpuNow * ((double) thresholdBytes / dirtyBytes));
      step = Math.min(cpuNow - cpuIdeal, step);
    }
    return Math.min(now + step, p.maxCpuThrottlePercent());
  }

  private String overBudget(long nowNs, long sentBytes, MigrationParameters p) {
    if (p.precopyMaxPasses() > 0 && syncs >= p.precopyMaxPasses()) {
      return "precopy used its budget of " + p.precopyMaxPasses() + " passes (ferry-precopy-max-passes)";
    }
    long bytes = byteBudget(p);
    if (bytes > 0 && sentBytes >= bytes) {
      return "precopy used its budget of " + bytes + " bytes ("
          + (p.precopyMaxBytes() > 0 ? "ferry-precopy-max-bytes" : FILE_BUDGET_RAM_MULTIPLE + " x RAM for a file: migration")
          + ")";
    }
    if (p.precopyMaxTimeMs() > 0 && nowNs - startNs >= p.precopyMaxTimeMs() * 1_000_000) {
      return "precopy used its budget of " + p.precopyMaxTimeMs() + " ms (ferry-precopy-max-time)";
    }
    return null;
  }

  private Decision giveUp(String over) {
    String why = over + (syncs > 0 ? "; " + (notConverging ? "not converging: " : "") + figures() : "");
    if (postcopyRam && autoPostcopy) {
      return new Decision(Action.POSTCOPY, why);
    }
    return new Decision(Action.FAIL, why);
  }

  private String figures() {
    return "the guest dirties " + mbps(dirtyBytesPerSec) + " MB/s, " + mbps(transferBytesPerSec) + " MB/s sent"
        + (throttlePercent > 0 ? ", CPU throttle " + throttlePercent + "%" : "")
        + ", no smaller dirty set for " + syncsWithoutProgress + " passes";
  }

  private static String mbps(long bytesPerSec) {
    return Long.toString(Math.round(bytesPerSec / 1e6));
  }
}
