package dev.ferry.migration;

import dev.ferry.ram.RamLiveState;
import dev.ferry.ram.RamPostcopySave;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.LiveStateHandler;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateSaver;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.StreamHeader;
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
  /** migrate-start-postcopy was given: switch at the next iteration that cannot complete as precopy. */
  private volatile boolean postcopyRequested;
  /** This migration's RAM save, when postcopy-ram is on (page requests go there). */
  private volatile RamPostcopySave postcopySave;
  /** The postcopy package went out: the guest runs on the destination, never here again. */
  private volatile boolean guestMovedAway;
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

  /**
   * New parameters take effect at once: max-bandwidth during precopy, max-postcopy-bandwidth after
   * the postcopy switch (max-bandwidth no longer applies then).
   */
  public void updateParameters(MigrationParameters p) {
    params = p;
    RateLimiter r = rate;
    MigrationStatus s = state.status();
    if (r != null && guestMovedAway) {
      r.setMaxBytesPerSec(p.maxPostcopyBandwidthBytesPerSec());
    } else if (r != null && s != MigrationStatus.DEVICE && s != MigrationStatus.POSTCOPY_ACTIVE) {
      r.setMaxBytesPerSec(p.maxBandwidthBytesPerSec());
    }
  }

  /** What this migration's live handlers get (e.g. RAM's xbzrle and statistics); set before start. */
  public void saveOptions(SaveOptions options) {
    saveOptions = java.util.Objects.requireNonNull(options, "options");
  }

  /**
   * migrate-start-postcopy: from the next iteration on, the migration switches to postcopy unless
   * what is left fits the downtime threshold (then it completes as precopy, as QEMU does). The
   * caller checked QEMU's rules (capability on, migration started).
   */
  public void startPostcopy() {
    postcopyRequested = true;
    RateLimiter r = rate;
    if (r != null) {
      r.wakeUp();
    }
  }

  /**
   * True once the postcopy package was sent: the destination runs the guest, this side's RAM is
   * stale, and this machine must never run again.
   */
  public boolean guestMovedAway() {
    return guestMovedAway;
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

  /**
   * Cancels: the thread notices, the machine runs again, the status becomes cancelled. After the
   * postcopy switch there is nothing to go back to (the destination may run the guest already), so a
   * cancel is ignored then.
   */
  public void cancel() {
    MigrationStatus now = state.status();
    if (now == MigrationStatus.POSTCOPY_ACTIVE || now == MigrationStatus.POSTCOPY_PAUSED || guestMovedAway) {
      LOG.warn("migrate_cancel ignored: the migration is in {} (the guest moves or moved to the destination)", now.qapiName());
      return;
    }
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
    RamLiveState ram = postcopyRam();
    if (ram != null) {
      saver.writer().writeCommand(new StreamCommand.PostcopyAdvise(ram.pageSizeSummary(), StreamHeader.TARGET_PAGE_SIZE));
    }
    try {
      saver.setupLive();
      if (ram != null && saver.liveSave(RamLiveState.IDSTR) instanceof RamPostcopySave ps) {
        postcopySave = ps;
      }
      stats.setupTimeMs = (System.nanoTime() - stats.startNs) / 1_000_000;
      stats.totalRamBytes(saver.pendingBytes(false));
      if (!state.transition(MigrationStatus.SETUP, MigrationStatus.ACTIVE, "setup done")) {
        throw new CancelledException();
      }
      if (iterate(saver, o, r)) {
        postcopy(saver, o, r);
      } else {
        complete(saver, o, r, wantRp);
      }
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
      // a destination that requires TLS: its reason alone, whichever thread read or wrote it
      PlainSource.RefusedException refused = PlainSource.refusal(e);
      error = refused != null ? refused.getMessage() : e.getMessage() == null ? e.toString() : e.getMessage();
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
    if (state.status() == MigrationStatus.POSTCOPY_PAUSED || guestMovedAway) {
      // the guest lives on the destination: never resume it here; the status stays paused
      guard(
          "status postcopy-paused",
          () -> state.transitionFromCurrent(MigrationStatus.POSTCOPY_PAUSED, pausedReason(error)));
      MigrationChannel c = connection.get();
      if (c != null) {
        guard("shutting the connection down", c::shutdown);
        guard("closing the connection", () -> closeQuietly(c));
      }
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

  /** The postcopy-ram capability's RAM handler, or null when postcopy is off. */
  private RamLiveState postcopyRam() {
    if (!caps.contains(MigrationCapability.POSTCOPY_RAM)) {
      return null;
    }
    for (SaveStateRegistry.Live l : registry.live()) {
      if (l.handler() instanceof RamLiveState ram) {
        return ram;
      }
    }
    return null;
  }

  static String pausedReason(String error) {
    return "postcopy: " + (error == null ? "the connection to the destination failed" : error)
        + "; the guest now runs on the destination and this side will not run it again"
        + " (postcopy recovery, migrate-recover / migrate resume=true, is not implemented in Ferry)";
  }

  /** Returns true to switch to postcopy, false to complete as precopy. */
  private boolean iterate(StateSaver saver, MigrationOutput o, RateLimiter r)
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
      if (postcopyRequested && pending > threshold && caps.contains(MigrationCapability.POSTCOPY_RAM)
          && saver.readyForPostcopy()) {
        LOG.info("postcopy switch: {} bytes pending, threshold {}", pending, threshold);
        return true;
      }
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
            return false;
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
    } else if (connection.get() instanceof PlainSource plain && !plain.awaitPeerClose(shutTimeoutMs)) {
      // no return path and no answer: as QEMU, the stream was sent and that is all a source knows
      LOG.warn("destination {} kept the connection open {} ms after the stream's end; completing without its word",
          plain.peerDescription(), shutTimeoutMs);
    }
    stats.downtimeMs = (System.nanoTime() - downtimeStart) / 1_000_000;
    stats.remainingBytes(0);
    if (!state.transition(MigrationStatus.DEVICE, MigrationStatus.COMPLETED, "completed")) {
      throw new CancelledException();
    }
    pausedByUs = false;
    vm.migrated();
  }

  /**
   * The postcopy switch and phase (QEMU's postcopy_start, then the migration thread in postcopy):
   * stop the guest; END sections of precopy-only handlers; the last sync and the discards; PING(2);
   * one package [LISTEN, device state, PING(3), RUN]; PING(4); then RAM in the background with the
   * destination's page requests first; END(ram), EOF without vmdesc; SHUT. A failure before the
   * package was sent fails the migration and the guest runs on here; after it, the migration pauses
   * and the guest never runs here again.
   */
  private void postcopy(StateSaver saver, MigrationOutput o, RateLimiter r)
      throws IOException, InterruptedException {
    RamPostcopySave ram = postcopySave;
    if (ram == null) {
      throw new IOException("postcopy-ram is on, but this machine's RAM save cannot switch to postcopy");
    }
    if (!state.transition(MigrationStatus.ACTIVE, MigrationStatus.POSTCOPY_ACTIVE, "migrate-start-postcopy")) {
      throw new CancelledException();
    }
    long downtimeStart = System.nanoTime();
    if (vm.running()) {
      vm.pause();
      pausedByUs = true;
    }
    long before = o.position();
    StreamWriter w = saver.writer();
    saver.completeLive(h -> !h.supportsPostcopy());
    for (StreamCommand.RamDiscard d : ram.startPostcopy()) {
      w.writeCommand(d);
    }
    w.writeCommand(new StreamCommand.Ping(2));
    r.setMaxBytesPerSec(params.maxPostcopyBandwidthBytesPerSec());
    java.io.ByteArrayOutputStream blob = new java.io.ByteArrayOutputStream();
    try (MigrationOutput pkgOut = new MigrationOutput(java.nio.channels.Channels.newChannel(blob))) {
      StreamWriter pkg = new StreamWriter(pkgOut);
      pkg.writeCommand(new StreamCommand.PostcopyListen());
      saver.saveDevices(pkg);
      pkg.writeCommand(new StreamCommand.Ping(3));
      pkg.writeCommand(new StreamCommand.PostcopyRun());
      pkg.flush();
    }
    checkReturnPath();
    w.writePackaged(blob.toByteArray());
    // from here on the destination may run the guest: this side's RAM is stale for good
    guestMovedAway = true;
    pausedByUs = false;
    vm.migrated();
    stats.downtimeMs = (System.nanoTime() - downtimeStart) / 1_000_000;
    w.writeCommand(new StreamCommand.Ping(4));
    stats.downtimeBytes.addAndGet(o.position() - before);
    try {
      while (true) {
        checkReturnPath();
        if (r.exhausted() && !ram.hasPageRequests()) {
          r.awaitWindowEnd();
          continue;
        }
        long at = o.position();
        boolean done = saver.iterateLive(() -> r.exhausted() && !ram.hasPageRequests());
        stats.postcopyBytes.addAndGet(o.position() - at);
        stats.remainingBytes(saver.pendingBytes(false));
        if (done) {
          break;
        }
      }
      long at = o.position();
      saver.completeLive(LiveStateHandler::supportsPostcopy);
      saver.finish(false);
      stats.postcopyBytes.addAndGet(o.position() - at);
      if (!shut.await(SHUT_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        throw new IOException("the destination did not confirm the end of postcopy within " + SHUT_TIMEOUT_MS + " ms");
      }
      checkReturnPath();
      if (shutStatus != 0) {
        throw new IOException("the destination failed to load the state (return path SHUT " + shutStatus + ")");
      }
    } catch (IOException | RuntimeException e) {
      String why = pausedReason(e.getMessage());
      LOG.warn("{}", why);
      state.transition(MigrationStatus.POSTCOPY_ACTIVE, MigrationStatus.POSTCOPY_PAUSED, why);
      return;
    }
    stats.remainingBytes(0);
    state.transition(MigrationStatus.POSTCOPY_ACTIVE, MigrationStatus.COMPLETED, "completed");
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

              @Override
              public void requestPages(String blockName, long start, long length) throws IOException {
                RamPostcopySave ram = postcopySave;
                if (ram == null) {
                  throw new MigrationStreamException("unexpected page request on the return path (postcopy-ram is off)");
                }
                stats.addPostcopyRequest();
                ram.queuePageRequest(blockName, start, length);
                RateLimiter r = rate;
                if (r != null) {
                  r.wakeUp();
                }
              }
            });
    try {
      while (!reader.readOne()) {
        // PONGs and the like
      }
    } catch (IOException | RuntimeException e) {
      if (state.status().isActive() && !cancelling()) {
        returnPathError = e;
        RateLimiter r = rate;
        if (r != null) {
          r.wakeUp(); // a postcopy migration waiting for its window notices now
        }
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
