package dev.ferry.migration;

import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateSaver;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One outgoing migration (QEMU's migration thread): setup, iterations while the machine runs,
 * switch-over once the pending data is small, completion. Runs on its own thread; the monitor
 * reads {@link #info} and may {@link #cancel}.
 *
 * <p><b>Convergence.</b> QEMU switches over as soon as the pending bytes fit in {@code bandwidth
 * × downtime-limit}. Ferry treats the downtime limit as the upper bound only: once the pending
 * bytes fit, it keeps iterating while each dirty sync still shrinks the pending set by at least
 * {@value #KEEP_ITERATING_RATIO_PERCENT}% (up to {@value #MAX_EXTRA_SYNCS} extra syncs), and
 * switches at once when what is left takes under {@value #SMALL_SEND_MS} ms to send. So a guest
 * whose dirty set shrinks round over round stops only for its last few pages.
 *
 * <p><b>Failure is safe.</b> Any error or a cancel before completion resumes the machine if this
 * migration paused it, stops dirty logging, and leaves the status failed (with {@code error-desc})
 * or cancelled; nothing on the source changes.
 */
public final class OutgoingMigration {
  private static final Logger LOG = LoggerFactory.getLogger(OutgoingMigration.class);
  static final int KEEP_ITERATING_RATIO_PERCENT = 10;
  static final int MAX_EXTRA_SYNCS = 40;
  static final int SMALL_SEND_MS = 2;
  /**
   * How long completion waits for the destination's SHUT on the return path once the whole stream
   * is written: the destination only has to take in what is in flight and check it, so a peer that
   * has not answered by then is gone or stuck, and the source must not stay paused for it.
   */
  static final long SHUT_TIMEOUT_MS = 30_000;

  /** Opens the connection (on the migration thread, so a slow connect does not block the monitor). */
  @FunctionalInterface
  public interface Connector {
    MigrationChannel connect() throws IOException;
  }

  private final SaveStateRegistry registry;
  private final MigrationVm vm;
  private final Configuration config;
  private final MigrationState state;
  private final MigrationStats stats = new MigrationStats();
  private final Set<MigrationCapability> caps;
  private volatile MigrationParameters params;
  private volatile SaveOptions saveOptions = SaveOptions.NONE;
  private final CountDownLatch done = new CountDownLatch(1);
  private final AtomicReference<MigrationChannel> connection = new AtomicReference<>();
  private volatile MigrationOutput out;
  private volatile RateLimiter rate;
  private volatile Thread thread;
  private volatile boolean pausedByUs;
  private volatile long shutStatus = -1;
  private final CountDownLatch shut = new CountDownLatch(1);
  private volatile Throwable returnPathError;
  private volatile long shutTimeoutMs = SHUT_TIMEOUT_MS;

  public OutgoingMigration(
      SaveStateRegistry registry,
      MigrationVm vm,
      Configuration config,
      MigrationState state,
      Set<MigrationCapability> caps,
      MigrationParameters params) {
    this.registry = registry;
    this.vm = vm;
    this.config = config;
    this.state = state;
    this.caps = caps.isEmpty() ? EnumSet.noneOf(MigrationCapability.class) : EnumSet.copyOf(caps);
    this.params = params;
    stats.onPass(state::firePass);
  }

  public MigrationStats stats() {
    return stats;
  }

  /** For tests: a shorter wait for SHUT than {@link #SHUT_TIMEOUT_MS}. */
  void setShutTimeoutMs(long ms) {
    shutTimeoutMs = ms;
  }

  public MigrationState state() {
    return state;
  }

  /** Bytes written to the stream so far. */
  public long transferredBytes() {
    MigrationOutput o = out;
    return o == null ? 0 : o.position();
  }

  /** Statistics as of now. */
  public MigrationStats.Snapshot info() {
    return stats.snapshot(transferredBytes(), System.nanoTime());
  }

  /** New parameters take effect at once (e.g. max-bandwidth during a migration). */
  public void updateParameters(MigrationParameters p) {
    params = p;
    RateLimiter r = rate;
    if (r != null && state.status() != MigrationStatus.DEVICE) {
      r.setMaxBytesPerSec(p.maxBandwidthBytesPerSec());
    }
  }

  /** What this migration's live handlers get (e.g. RAM's xbzrle and statistics); set before start. */
  public void saveOptions(SaveOptions options) {
    saveOptions = java.util.Objects.requireNonNull(options, "options");
  }

  /**
   * Starts the migration thread.
   *
   * @throws IllegalStateException when a migration is already active
   */
  public void start(Connector connector) {
    MigrationStatus cur = state.status();
    if (cur.isActive()) {
      throw new IllegalStateException("There's a migration process in progress");
    }
    if (!state.transition(cur, MigrationStatus.SETUP, "migrate")) {
      throw new IllegalStateException("There's a migration process in progress");
    }
    stats.startNs = System.nanoTime();
    thread = Thread.ofPlatform().name("migration").daemon().start(() -> run(connector));
  }

  /** Blocks until the migration ended; returns its final status, or null on time-out. */
  public MigrationStatus await(long timeout, TimeUnit unit) throws InterruptedException {
    return done.await(timeout, unit) ? state.status() : null;
  }

  /** Cancels: the thread notices, the machine runs again, the status becomes cancelled. */
  public void cancel() {
    MigrationStatus before = state.transitionFromCurrent(MigrationStatus.CANCELLING, "migrate_cancel");
    if (before.isActive() && before != MigrationStatus.CANCELLING) {
      MigrationChannel c = connection.get();
      if (c != null) {
        c.shutdown();
      }
      RateLimiter r = rate;
      if (r != null) {
        r.wakeUp();
      }
      Thread t = thread;
      if (t != null) {
        t.interrupt();
      }
    }
  }

  private boolean cancelling() {
    return state.status() == MigrationStatus.CANCELLING;
  }

  private void run(MigrationChannel c) throws IOException, InterruptedException {
    connection.set(c);
    if (cancelling()) {
      throw new CancelledException();
    }
    MigrationOutput o = new MigrationOutput(c);
    out = o;
    RateLimiter r = new RateLimiter(o::position, System::nanoTime, params.maxBandwidthBytesPerSec());
    rate = r;
    StateSaver saver = new StateSaver(registry, new StreamWriter(o), saveOptions);
    saver.begin(config);
    boolean wantRp = caps.contains(MigrationCapability.RETURN_PATH) || caps.contains(MigrationCapability.POSTCOPY_RAM);
    Thread rpThread = null;
    if (wantRp) {
      if (!c.supportsReturnPath()) {
        throw new IOException("the return-path capability is on, but " + c.peerDescription() + " has no return path");
      }
      saver.writer().writeCommand(new StreamCommand.OpenReturnPath());
      saver.writer().writeCommand(new StreamCommand.Ping(1));
      rpThread = Thread.ofPlatform().name("migration-rp").daemon().start(() -> readReturnPath(c));
    }
    try {
      saver.setupLive();
      stats.setupTimeMs = (System.nanoTime() - stats.startNs) / 1_000_000;
      stats.totalRamBytes(saver.pendingBytes(false));
      if (!state.transition(MigrationStatus.SETUP, MigrationStatus.ACTIVE, "setup done")) {
        throw new CancelledException();
      }
      iterate(saver, o, r);
      complete(saver, o, r, wantRp);
    } finally {
      saver.cleanupLive(); // this migration's live state: RAM's dirty log, bitmaps, caches
      if (rpThread != null && rpThread.isAlive()) {
        c.shutdown();
      }
    }
  }

  private void run(Connector connector) {
    String error = null;
    boolean cancelled = false;
    try {
      run(connector.connect());
    } catch (CancelledException e) {
      cancelled = true;
    } catch (InterruptedException e) {
      cancelled = cancelling();
      if (!cancelled) {
        error = "interrupted";
      }
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      cancelled = cancelling();
      error = e.getMessage() == null ? e.toString() : e.getMessage();
      if (!cancelled) {
        LOG.debug("migration failed", e);
      }
    } finally {
      // Each step in its own guard: a failing step (a cleanup that throws, resume() on a machine
      // closed meanwhile, a listener) must not skip the next, and await() must always return.
      try {
        finish(cancelled, error);
      } finally {
        stats.endNs = System.nanoTime();
        done.countDown();
      }
    }
  }

  private void finish(boolean cancelled, String error) {
    // the live devices' per-migration state was released by StateSaver.cleanupLive() in run()
    if (state.status() == MigrationStatus.COMPLETED) {
      guard("closing the connection", () -> closeQuietly(connection.get()));
      return;
    }
    String[] why = {error};
    if (pausedByUs) {
      pausedByUs = false;
      guard(
          "resuming the source",
          () -> {
            try {
              vm.resume();
            } catch (RuntimeException e) {
              // the source cannot run on (e.g. it was closed): say so in error-desc as well
              why[0] = (why[0] == null ? "" : why[0] + "; ") + "the source could not be resumed: " + e.getMessage();
              throw e;
            }
          });
    }
    MigrationChannel c = connection.get();
    if (c != null) {
      guard("shutting the connection down", c::shutdown);
      guard("closing the connection", () -> closeQuietly(c));
    }
    if (cancelled) {
      guard("status cancelled", () -> state.transitionFromCurrent(MigrationStatus.CANCELLED, "cancelled"));
    } else {
      guard("status failed", () -> state.transitionFromCurrent(MigrationStatus.FAILED, why[0] == null ? "failed" : why[0]));
    }
  }

  private static void guard(String what, Runnable step) {
    try {
      step.run();
    } catch (RuntimeException e) {
      LOG.warn("migration end: {} failed: {}", what, e.toString(), e);
    }
  }

  private static void closeQuietly(MigrationChannel c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (IOException e) {
      LOG.debug("close failed", e);
    }
  }

  private void iterate(StateSaver saver, MigrationOutput o, RateLimiter r)
      throws IOException, InterruptedException {
    long windowStartNs = System.nanoTime();
    long windowStartBytes = o.position();
    double bwBytesPerMs = 0;
    long lastFitPending = Long.MAX_VALUE;
    int extraSyncs = 0;
    long lastSyncs = stats.dirtySyncCount();
    long lastSyncNs = windowStartNs;
    MigrationEvents.Pass passEvent = new MigrationEvents.Pass();
    passEvent.begin();
    while (true) {
      if (cancelling()) {
        throw new CancelledException();
      }
      checkReturnPath();
      long now = System.nanoTime();
      if (now - windowStartNs >= RateLimiter.WINDOW_NS) {
        long bytes = o.position() - windowStartBytes;
        bwBytesPerMs = bytes / ((now - windowStartNs) / 1e6);
        stats.bandwidthBytesPerMs = bwBytesPerMs;
        stats.pagesPerSecond = (long) (bwBytesPerMs * 1000 / 4096);
        windowStartNs = now;
        windowStartBytes = o.position();
      }
      double bw = bwBytesPerMs > 0 ? bwBytesPerMs : measuredSoFar(o, now);
      long threshold = (long) (bw * params.downtimeLimitMs());
      long pending = saver.pendingBytes(false);
      stats.expectedDowntimeMs = bw > 0 ? (long) (pending / bw) : 0;
      long small = (long) Math.max(64 * 4096, bw * SMALL_SEND_MS);
      // Sync when the estimate fits; after the first fit, only once a round has drained the
      // bitmap, so that each sync measures what the guest dirtied during one whole round.
      if (pending <= threshold && (lastFitPending == Long.MAX_VALUE || pending <= small)) {
        pending = saver.pendingBytes(true);
        updateDirtyRate(lastSyncs, lastSyncNs);
        lastSyncs = stats.dirtySyncCount();
        lastSyncNs = System.nanoTime();
        stats.remainingBytes(pending);
        stats.expectedDowntimeMs = bw > 0 ? (long) (pending / bw) : 0;
        LOG.debug("sync {}: {} bytes pending, threshold {}, bandwidth {} B/ms",
            stats.dirtySyncCount(), pending, threshold, (long) bw);
        passEvent.end();
        passEvent.pass = stats.dirtySyncCount();
        passEvent.dirtyPages = stats.lastSyncDirtyPages.get();
        passEvent.pendingBytes = pending;
        passEvent.thresholdBytes = threshold;
        passEvent.commit();
        passEvent = new MigrationEvents.Pass();
        passEvent.begin();
        if (pending <= threshold) {
          boolean stalled =
              lastFitPending != Long.MAX_VALUE
                  && pending * 100 > lastFitPending * (100 - KEEP_ITERATING_RATIO_PERCENT);
          if (pending <= small || stalled || extraSyncs >= MAX_EXTRA_SYNCS) {
            LOG.info("switch-over: {} bytes pending, threshold {} (bandwidth {} MB/s)",
                pending, threshold, String.format("%.0f", bw * 1000 / 1e6));
            return;
          }
          lastFitPending = pending;
          extraSyncs++;
        }
      }
      stats.remainingBytes(pending);
      if (r.exhausted()) {
        r.awaitWindowEnd();
        continue;
      }
      long before = o.position();
      saver.iterateLive(r::exhausted);
      stats.precopyBytes.addAndGet(o.position() - before);
    }
  }

  private double measuredSoFar(MigrationOutput o, long now) {
    long ms = Math.max(1, (now - stats.startNs) / 1_000_000);
    return (double) o.position() / ms;
  }

  private void updateDirtyRate(long syncsBefore, long sinceNs) {
    // the RAM saver reports dirtied pages through stats; rate = pages dirtied per second
    long elapsedNs = System.nanoTime() - sinceNs;
    if (elapsedNs > 0 && stats.dirtySyncCount() > syncsBefore) {
      stats.dirtyPagesRate(stats.lastSyncDirtyPages.get() * 1_000_000_000L / elapsedNs);
    }
  }

  private void complete(StateSaver saver, MigrationOutput o, RateLimiter r, boolean waitShut)
      throws IOException, InterruptedException {
    long downtimeStart = System.nanoTime();
    MigrationEvents.SwitchOver switchOver = new MigrationEvents.SwitchOver();
    switchOver.begin();
    try {
      completeWithGuestPaused(saver, o, r, waitShut, downtimeStart);
      switchOver.completed = true;
    } finally {
      switchOver.end();
      switchOver.downtimeBytes = stats.downtimeBytes.get();
      switchOver.commit();
    }
  }

  private void completeWithGuestPaused(StateSaver saver, MigrationOutput o, RateLimiter r, boolean waitShut, long downtimeStart)
      throws IOException, InterruptedException {
    if (vm.running()) {
      vm.pause();
      pausedByUs = true;
    }
    if (!state.transition(MigrationStatus.ACTIVE, MigrationStatus.DEVICE, "switch-over")) {
      throw new CancelledException();
    }
    r.setMaxBytesPerSec(0);
    long before = o.position();
    saver.completeLive();
    saver.saveDevices();
    saver.finish(true);
    stats.downtimeBytes.addAndGet(o.position() - before);
    if (waitShut) {
      long waitMs = shutTimeoutMs;
      if (!shut.await(waitMs, TimeUnit.MILLISECONDS)) {
        MigrationChannel c = connection.get();
        throw new IOException("destination " + (c == null ? "" : c.peerDescription() + " ")
            + "did not confirm the load (SHUT) within " + (waitMs % 1000 == 0 ? waitMs / 1000 + " s" : waitMs + " ms"));
      }
      checkReturnPath();
      if (shutStatus != 0) {
        throw new IOException("the destination failed to load the state (return path SHUT " + shutStatus + ")");
      }
    }
    stats.downtimeMs = (System.nanoTime() - downtimeStart) / 1_000_000;
    stats.remainingBytes(0);
    if (!state.transition(MigrationStatus.DEVICE, MigrationStatus.COMPLETED, "completed")) {
      throw new CancelledException();
    }
    pausedByUs = false;
    vm.migrated();
  }

  private void checkReturnPath() throws IOException {
    Throwable t = returnPathError;
    if (t != null) {
      throw new IOException("return path failed: " + t.getMessage(), t);
    }
  }

  private void readReturnPath(MigrationChannel c) {
    ReturnPath.Reader reader =
        new ReturnPath.Reader(
            new MigrationInput(c),
            new ReturnPath.Handler() {
              @Override
              public void shut(long status) {
                shutStatus = status;
              }
            });
    try {
      while (!reader.readOne()) {
        // PONGs and the like
      }
    } catch (IOException | RuntimeException e) {
      if (state.status().isActive() && !cancelling()) {
        returnPathError = e;
      }
    } finally {
      shut.countDown();
    }
  }

  /** Thrown inside the thread when a cancel was seen. */
  private static final class CancelledException extends RuntimeException {
    CancelledException() {
      super("cancelled", null, false, false);
    }
  }
}
