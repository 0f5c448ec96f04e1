package dev.ferry.migration;

import dev.ferry.migration.multifd.MultifdSender;
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
import java.util.List;
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
 * <p><b>Convergence.</b> When to sync, stop the guest, switch to postcopy, throttle the guest
 * (auto-converge) or give up is {@link SwitchOverPolicy}'s call; this class feeds it figures and
 * carries out its answers. Before the guest's state goes out, the pending bytes are measured again
 * with the guest stopped (the downtime guard): when they would not go out within {@code
 * downtime-limit}, the guest runs on and precopy goes on. With {@code pause-before-switchover} the
 * migration then waits in {@code pre-switchover} for {@code migrate-continue}.
 *
 * <p><b>Failure is safe.</b> Any error or a cancel before completion resumes the machine if this
 * migration paused it, stops dirty logging, and leaves the status failed (with {@code error-desc})
 * or cancelled; nothing on the source changes.
 */
public final class OutgoingMigration {
  private static final Logger LOG = LoggerFactory.getLogger(OutgoingMigration.class);
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
  /** Counted down when the current connection's return-path reader ends (SHUT or error). */
  private volatile CountDownLatch shut = new CountDownLatch(1);
  private volatile Throwable returnPathError;
  /**
   * Which connection's return path counts: a reader of a connection lost before a recovery must not
   * poison the next one with its late error.
   */
  private volatile int linkGeneration;
  /** Bytes written on connections lost before the current one (postcopy recovery). */
  private volatile long bytesOnLostConnections;
  /** The recovery handshake in progress on the current connection, or null. */
  private volatile Recovery recovery;
  /** migrate resume=true hands the paused migration thread its new connection here. */
  private final java.util.concurrent.SynchronousQueue<Connector> resumeRequests = new java.util.concurrent.SynchronousQueue<>();
  /** The migration thread waits in postcopy-paused for a resume request. */
  private volatile boolean awaitingResume;
  private final Object settled = new Object();
  /** How long the last postcopy recovery took, from the resume request to postcopy-active (ms), or -1. */
  private volatile long lastRecoveryMs = -1;
  private volatile long resumeRequestedNs;
  /** migrate-start-postcopy was given: switch at the next iteration that cannot complete as precopy. */
  private volatile boolean postcopyRequested;
  /** This migration's RAM save, when postcopy-ram is on (page requests go there). */
  private volatile RamPostcopySave postcopySave;
  /** The postcopy package went out: the guest runs on the destination, never here again. */
  private volatile boolean guestMovedAway;
  private volatile long shutTimeoutMs = SHUT_TIMEOUT_MS;
  /** The stream goes to a {@code file:} (the precopy byte budget defaults to a multiple of RAM). */
  private volatile boolean fileTarget;
  /** migrate-continue released the pre-switchover pause. */
  private final java.util.concurrent.Semaphore continueFromPause = new java.util.concurrent.Semaphore(0);
  /** The CPU throttle this migration set on the guest (auto-converge); 0 when none. */
  private volatile int throttlePercent;
  /** The multifd channels (the multifd capability), or null. */
  private final MultifdSender multifd;
  private volatile Connector multifdConnector;
  /** With multifd, compression and a return path: the destination's load backlog (PING/PONG); else null. */
  private volatile LoadBacklog backlog;

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
    stats.multifdBytes(this::multifdBytes);
    this.multifd = this.caps.contains(MigrationCapability.MULTIFD)
        ? new MultifdSender(params.multifdChannels(), params.multifdCompression(), params.multifdLevel(),
            dev.ferry.stream.MultifdInit.uuidOrZeros(config.uuid()))
        : null;
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

  /**
   * Bytes written to the stream so far (over every connection of a recovered postcopy), as of the
   * output's last flush: any thread may call it (the output itself is the migration thread's).
   */
  public long transferredBytes() {
    MigrationOutput o = out;
    return bytesOnLostConnections + (o == null ? 0 : o.flushedPosition()) + multifdBytes();
  }

  /**
   * What the multifd channels sent as 7.2 counts it ({@code multifd-bytes}: headers plus page bytes
   * before compression); 0 without multifd.
   */
  public long multifdBytes() {
    MultifdSender m = multifd;
    return m == null ? 0 : m.multifdBytes();
  }

  /** Bytes actually written on the multifd channels (compressed payloads as they went); 0 without multifd. */
  public long multifdWireBytes() {
    MultifdSender m = multifd;
    return m == null ? 0 : m.wireBytes();
  }

  /**
   * The bytes this migration has sent: the main stream and, with multifd, the channels (7.2 counts
   * multifd bytes into {@code transferred} and against {@code max-bandwidth} the same way). The rate
   * limit, the bandwidth estimate and the byte budgets all run on it. With compression the channels
   * count pages before compression, when written: the rate is then the wire rate times the
   * compression ratio, in the unit of the pending bytes (guest pages), so pending / rate is the time
   * the rest takes; what the socket buffers still hold for the destination is added to the pending
   * bytes from the PING/PONG ledger ({@link LoadBacklog}).
   */
  private long sent(MigrationOutput o) {
    return o.position() + multifdBytes();
  }

  /**
   * With the multifd capability: how the channels connect (the main stream's tcp or unix address),
   * set by the manager for {@code migrate URI}; a test may wrap it. Without one the migration fails
   * as 7.2's does on other transports.
   */
  public void multifdConnector(Connector connector) {
    multifdConnector = connector;
  }

  /** How long the last postcopy recovery took, from migrate resume=true to postcopy-active (ms), or -1. */
  public long lastRecoveryMs() {
    return lastRecoveryMs;
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

  /** The stream goes to a {@code file:}: a precopy byte budget applies by default (see {@link SwitchOverPolicy}). */
  void fileTarget(boolean file) {
    fileTarget = file;
  }

  /**
   * migrate-continue: releases a migration waiting in {@code pre-switchover}.
   *
   * @param expected the status the caller says the migration is in
   * @throws IllegalStateException with QEMU's text when the migration is not in that status
   */
  public void continueFromPause(MigrationStatus expected) {
    MigrationStatus now = state.status();
    if (now != expected) {
      throw new IllegalStateException("Migration not in expected state: " + now.qapiName());
    }
    continueFromPause.release();
  }

  /** The CPU throttle (auto-converge) this migration holds the guest at, 0 when none. */
  public int cpuThrottlePercent() {
    return throttlePercent;
  }

  /** What this migration's live handlers get (e.g. RAM's xbzrle and statistics); set before start. */
  public void saveOptions(SaveOptions options) {
    saveOptions = java.util.Objects.requireNonNull(options, "options");
  }

  /** What this migration's live handlers get (e.g. whether it sends the disks). */
  public SaveOptions saveOptions() {
    return saveOptions;
  }

  /**
   * migrate-start-postcopy: from the next iteration on, the migration switches to postcopy unless
   * what is left fits the downtime threshold (then it completes as precopy, as QEMU does). The
   * caller checked QEMU's rules (capability on, migration started).
   */
  public void startPostcopy() {
    postcopyRequested = true;
    wakeUp();
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

  /**
   * Blocks until the migration ended or waits in postcopy-paused for {@link #resume}; returns its
   * status then, or null on time-out.
   */
  public MigrationStatus await(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    synchronized (settled) {
      while (done.getCount() > 0 && !awaitingResume) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return null;
        }
        TimeUnit.NANOSECONDS.timedWait(settled, left);
      }
    }
    return state.status();
  }

  private void settle(boolean awaiting) {
    synchronized (settled) {
      awaitingResume = awaiting;
      settled.notifyAll();
    }
  }

  /**
   * migrate resume=true: the paused postcopy migration goes on over the connection {@code
   * connector} opens. The caller checked QEMU's rules (postcopy-paused).
   *
   * @throws IllegalStateException when the migration thread does not wait for a resume
   */
  public void resume(Connector connector) throws InterruptedException {
    resumeRequestedNs = System.nanoTime();
    if (!resumeRequests.offer(connector, 5, TimeUnit.SECONDS)) {
      throw new IllegalStateException("Cannot resume if there is no paused migration");
    }
    settle(false); // await() now waits for the recovery's outcome
  }

  /**
   * migrate-pause on the source: in postcopy-active the connection is shut, and the migration
   * pauses (the destination sees the connection go and pauses too). Returns false in any other state.
   */
  public boolean pausePostcopy() {
    synchronized (pauseLock) {
      if (state.status() != MigrationStatus.POSTCOPY_ACTIVE) {
        return false;
      }
      if (postcopyStreamSent) {
        // found by the soak: a pause now would leave this side postcopy-paused for good once the
        // destination, which has the whole stream, completes (it then refuses migrate-recover)
        throw new IllegalStateException("migrate-pause: the whole postcopy stream has been sent;"
            + " the migration completes once the destination confirms the load (SHUT)");
      }
      shutConnection();
      return true;
    }
  }

  /** Orders {@link #pausePostcopy} against the end of the postcopy stream. */
  private final Object pauseLock = new Object();
  /** The postcopy stream went out whole (EOF flushed) on the current connection; only SHUT is awaited. */
  private volatile boolean postcopyStreamSent;

  /** Shuts the connection (if any) and wakes the thread, so it notices. */
  private void shutConnection() {
    MigrationChannel c = connection.get();
    if (c != null) {
      c.shutdown();
    }
    wakeUp();
  }

  /** Wakes the migration thread from a rate-limit sleep. */
  private void wakeUp() {
    RateLimiter r = rate;
    if (r != null) {
      r.wakeUp();
    }
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
      shutConnection();
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
    // setup-time as QEMU counts it: its migration thread takes the time when it starts, which is
    // once the channel is connected (migrate_fd_connect), and stops it when setup is done; the
    // connection is in total-time only
    long setupStartNs = System.nanoTime();
    connection.set(c);
    if (cancelling()) {
      throw new CancelledException();
    }
    SaveOptions options = saveOptions;
    if (multifd != null) {
      Connector mc = multifdConnector;
      if (mc == null) {
        throw new IOException("multifd is not supported by current protocol (" + c.peerDescription()
            + "; multifd needs a tcp: or unix: migration URI)");
      }
      multifd.connect(mc); // after the main connection: a 7.2 destination takes the first one as main
      options = options.with(multifd);
    }
    MigrationOutput o = new MigrationOutput(c);
    out = o;
    RateLimiter r = new RateLimiter(() -> sent(o), System::nanoTime, params.maxBandwidthBytesPerSec());
    rate = r;
    StateSaver saver = new StateSaver(registry, new StreamWriter(o), options);
    saver.begin(config);
    boolean wantRp = caps.contains(MigrationCapability.RETURN_PATH) || caps.contains(MigrationCapability.POSTCOPY_RAM);
    Thread rpThread = null;
    if (wantRp) {
      if (!c.supportsReturnPath()) {
        throw new IOException("the return-path capability is on, but " + c.peerDescription() + " has no return path");
      }
      saver.writer().writeCommand(new StreamCommand.OpenReturnPath());
      saver.writer().writeCommand(new StreamCommand.Ping(1));
      int gen = linkGeneration;
      CountDownLatch shutNow = shut;
      rpThread = Thread.ofPlatform().name("migration-rp").daemon().start(() -> readReturnPath(c, gen, shutNow));
      if (multifd != null && params.multifdCompression() != dev.ferry.stream.MultifdCompression.NONE) {
        backlog = new LoadBacklog();
      }
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
      stats.setupTimeMs = (System.nanoTime() - setupStartNs) / 1_000_000;
      stats.totalRamBytes(saver.pendingBytes(false));
      stats.remainingBytes(stats.totalRamBytes); // all of it, until the first check says more exactly
      if (!state.transition(MigrationStatus.SETUP, MigrationStatus.ACTIVE, "setup done")) {
        throw new CancelledException();
      }
      SwitchOverPolicy policy = new SwitchOverPolicy(stats.startNs, caps.contains(MigrationCapability.AUTO_CONVERGE),
          ram != null, caps.contains(MigrationCapability.FERRY_AUTO_POSTCOPY), fileTarget);
      policy.totalRamBytes(stats.totalRamBytes);
      while (true) {
        if (iterate(saver, o, r, policy)) {
          throttle(0, "postcopy: the guest moves to the destination");
          postcopy(saver, o, r);
          break;
        }
        if (complete(saver, o, r, wantRp, policy)) {
          break;
        }
      }
    } finally {
      // the multifd channels are closed once, by run(Connector), also when connecting them failed
      saver.cleanupLive(); // this migration's live state: RAM's dirty log, bitmaps, caches
      MigrationChannel now = connection.get();
      if (now != null && (now != c || rpThread != null && rpThread.isAlive())) {
        now.shutdown();
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
      error = refused != null ? refused.getMessage() : message(e);
      if (!cancelled) {
        LOG.debug("migration failed", e);
      }
    } finally {
      // Each step in its own guard: a failing step (a cleanup that throws, resume() on a machine
      // closed meanwhile, a listener) must not skip the next, and await() must always return.
      try {
        guard("ending the CPU throttle", () -> throttle(0, "the migration ended"));
        if (multifd != null) {
          // the one close of the channels: after a success everything went out at the last sync;
          // also when connecting them failed
          guard("closing the multifd channels", multifd::close);
        }
        finish(cancelled, error);
      } finally {
        stats.endNs = System.nanoTime();
        done.countDown();
        settle(false);
      }
    }
  }

  /** Pauses the guest if it runs, remembering that this migration did (a failure resumes it). */
  private void pauseGuest() throws InterruptedException {
    if (vm.running()) {
      vm.pause();
      pausedByUs = true;
    }
  }

  /** The exception's message, or the exception itself when it has none. */
  private static String message(Throwable e) {
    return e.getMessage() == null ? e.toString() : e.getMessage();
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
      shutAndClose();
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

  /** Closes {@code c} (null: nothing), logging a failure at DEBUG. */
  static void closeQuietly(MigrationChannel c) {
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
        + "; the guest now runs on the destination and this side will not run it again;"
        + " postcopy recovery: migrate-recover URI on the destination, then migrate resume=true (migrate -r) here";
  }

  /** The rate measured over the last full {@link RateLimiter#WINDOW_NS} window (bytes/ms); 0 before one ended. */
  private double bwBytesPerMs;
  private long windowStartNs;
  private long windowStartBytes;

  /** Measures the stream's rate over {@link RateLimiter#WINDOW_NS} windows; returns the rate to plan with. */
  private double measureRate(MigrationOutput o, long now) {
    if (windowStartNs == 0) {
      windowStartNs = now;
      windowStartBytes = sent(o);
    } else if (now - windowStartNs >= RateLimiter.WINDOW_NS) {
      long bytes = sent(o) - windowStartBytes;
      bwBytesPerMs = bytes / ((now - windowStartNs) / 1e6);
      stats.bandwidthBytesPerMs = bwBytesPerMs;
      stats.pagesPerSecond = (long) (bwBytesPerMs * 1000 / 4096);
      windowStartNs = now;
      windowStartBytes = sent(o);
    }
    return bwBytesPerMs > 0 ? bwBytesPerMs : measuredSoFar(o, now);
  }

  /** Sets the guest's CPU throttle (auto-converge) and says so in stats and JFR. */
  private void throttle(int percent, String reason) {
    int before = throttlePercent;
    if (before == percent) {
      return;
    }
    vm.throttle(percent);
    throttlePercent = percent;
    stats.cpuThrottlePercentage = percent;
    MigrationEvents.ThrottleStep e = new MigrationEvents.ThrottleStep();
    e.previousPercentage = before / 100.0;
    e.percentage = percent / 100.0;
    e.reason = reason;
    e.commit();
    LOG.info("auto-converge: CPU throttle {}% -> {}% ({})", before, percent, reason);
  }

  /**
   * Precopy iterations until {@link SwitchOverPolicy} says stop. Returns true to switch to postcopy,
   * false to complete as precopy.
   *
   * @throws IOException when the policy gives up (budget), with its reason
   */
  private boolean iterate(StateSaver saver, MigrationOutput o, RateLimiter r, SwitchOverPolicy policy)
      throws IOException, InterruptedException {
    MigrationEvents.Pass passEvent = new MigrationEvents.Pass();
    passEvent.begin();
    while (true) {
      if (cancelling()) {
        throw new CancelledException();
      }
      checkReturnPath();
      long now = System.nanoTime();
      double bw = measureRate(o, now);
      MigrationParameters p = params; // changes apply at the next check
      long threshold = SwitchOverPolicy.thresholdBytes(bw, p);
      // the load backlog counts for the estimates, not in ram.remaining (those bytes were sent, as 7.2 says)
      long unconfirmed = backlogBytes();
      long pending = saver.pendingBytes(false) + unconfirmed;
      stats.expectedDowntimeMs = bw > 0 ? (long) (pending / bw) : 0;
      SwitchOverPolicy.Decision d = policy.check(now, pending, bw, sent(o), p,
          postcopyRequested && saver.readyForPostcopy()); // block migration: the switch waits for it;
      if (d.action() == SwitchOverPolicy.Action.SYNC) {
        unconfirmed = backlogBytes();
        pending = saver.pendingBytes(true) + unconfirmed;
        long dirtied = stats.lastSyncDirtyPages.get();
        stats.remainingBytes(pending - unconfirmed);
        stats.expectedDowntimeMs = bw > 0 ? (long) (pending / bw) : 0;
        d = policy.afterSync(System.nanoTime(), pending, dirtied, sent(o), bw, p); // owns the dirty rate
        stats.convergence = policy.convergence();
        if (policy.throttlePercent() != throttlePercent) {
          throttle(policy.throttlePercent(), "dirty rate above throttle-trigger-threshold in two periods");
        }
        LOG.debug("sync {}: {} bytes pending, threshold {}, bandwidth {} B/ms, {}",
            stats.dirtySyncCount(), pending, threshold, (long) bw, d.action());
        passEvent.end();
        passEvent.pass = stats.dirtySyncCount();
        passEvent.dirtyPages = dirtied;
        passEvent.pendingBytes = pending;
        passEvent.thresholdBytes = threshold;
        passEvent.commit();
        passEvent = new MigrationEvents.Pass();
        passEvent.begin();
      }
      switch (d.action()) {
        case COMPLETE -> {
          LOG.info("switch-over: {} bytes pending, threshold {} (bandwidth {} MB/s)",
              pending, threshold, String.format("%.0f", bw * 1000 / 1e6));
          return false;
        }
        case POSTCOPY -> {
          LOG.info("postcopy switch ({}): {} bytes pending, threshold {}", d.reason(), pending, threshold);
          return true;
        }
        case FAIL -> throw new IOException(d.reason());
        case ITERATE, SYNC -> {
          // more pages
        }
      }
      stats.remainingBytes(pending - unconfirmed);
      if (r.exhausted()) {
        r.awaitWindowEnd();
        continue;
      }
      long before = sent(o);
      saver.iterateLive(r::exhausted);
      stats.precopyBytes.addAndGet(sent(o) - before);
      LoadBacklog b = backlog;
      if (b != null && !postcopyRequested) {
        // the section's pages are all written (its EOS waited for the channels): the PONG says loaded
        saver.writer().writeCommand(new StreamCommand.Ping(b.pinged(sent(o))));
        o.flush();
      }
    }
  }

  /**
   * What the destination has yet to load of what was sent (see {@link LoadBacklog}), counted as
   * pending by the switch-over estimate and the downtime guard; 0 without one.
   */
  private long backlogBytes() {
    LoadBacklog b = backlog;
    return b == null ? 0 : b.backlogBytes();
  }

  private double measuredSoFar(MigrationOutput o, long now) {
    long ms = Math.max(1, (now - stats.startNs) / 1_000_000);
    return (double) sent(o) / ms;
  }

  /**
   * Stops the guest and completes, or (the downtime guard) lets it run on when what is pending with
   * the guest stopped would not go out within {@code downtime-limit}: returns false then.
   */
  private boolean complete(StateSaver saver, MigrationOutput o, RateLimiter r, boolean waitShut, SwitchOverPolicy policy)
      throws IOException, InterruptedException {
    long downtimeStart = System.nanoTime();
    pauseGuest();
    // the guard: the exact rest, now that the guest cannot dirty more, against the rate measured last
    long pending = saver.pendingBytes(true) + backlogBytes();
    double bw = measureRate(o, System.nanoTime());
    boolean fits = policy.switchOverFits(pending, bw, params); // the policy counts the refusals
    stats.convergence = policy.convergence();
    if (!fits) {
      LOG.info("downtime guard: {} bytes pending with the guest stopped would take {} ms at {} MB/s, over downtime-limit"
          + " {} ms; the guest runs on", pending, (long) (pending / bw), String.format("%.0f", bw * 1000 / 1e6),
          params.downtimeLimitMs());
      if (pausedByUs) {
        pausedByUs = false;
        vm.resume();
      }
      return false;
    }
    throttle(0, "switch-over: the guest stops");
    if (caps.contains(MigrationCapability.PAUSE_BEFORE_SWITCHOVER)) {
      awaitContinue(MigrationStatus.DEVICE);
    }
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
    return true;
  }

  /**
   * pause-before-switchover: active → pre-switchover, wait for migrate-continue (or a cancel), then
   * → {@code next}.
   */
  private void awaitContinue(MigrationStatus next) throws InterruptedException {
    continueFromPause.drainPermits();
    if (!state.transition(MigrationStatus.ACTIVE, MigrationStatus.PRE_SWITCHOVER, "pause-before-switchover")) {
      throw new CancelledException();
    }
    while (!continueFromPause.tryAcquire(100, TimeUnit.MILLISECONDS)) {
      if (cancelling()) {
        throw new CancelledException();
      }
    }
    if (!state.transition(MigrationStatus.PRE_SWITCHOVER, next, "migrate-continue")) {
      throw new CancelledException();
    }
  }

  private void completeWithGuestPaused(StateSaver saver, MigrationOutput o, RateLimiter r, boolean waitShut, long downtimeStart)
      throws IOException, InterruptedException {
    if (state.status() != MigrationStatus.DEVICE
        && !state.transition(MigrationStatus.ACTIVE, MigrationStatus.DEVICE, "switch-over")) {
      throw new CancelledException();
    }
    r.setMaxBytesPerSec(0);
    long before = sent(o);
    saver.completeLive();
    saver.saveDevices();
    saver.finish(true);
    stats.downtimeBytes.addAndGet(sent(o) - before);
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
   * (postcopy-paused, waiting for migrate resume=true, see {@link #pauseUntilResumed}) and the guest
   * never runs here again.
   */
  private void postcopy(StateSaver saver, MigrationOutput o, RateLimiter r)
      throws IOException, InterruptedException {
    RamPostcopySave ram = postcopySave;
    if (ram == null) {
      throw new IOException("postcopy-ram is on, but this machine's RAM save cannot switch to postcopy");
    }
    long downtimeStart = System.nanoTime();
    if (caps.contains(MigrationCapability.PAUSE_BEFORE_SWITCHOVER)) {
      // QEMU's postcopy_start: stop the guest, pre-switchover until migrate-continue, postcopy-active
      pauseGuest();
      awaitContinue(MigrationStatus.POSTCOPY_ACTIVE);
    } else if (!state.transition(MigrationStatus.ACTIVE, MigrationStatus.POSTCOPY_ACTIVE, "migrate-start-postcopy")) {
      throw new CancelledException();
    }
    pauseGuest();
    long before = sent(o);
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
    stats.downtimeBytes.addAndGet(sent(o) - before);
    while (true) {
      try {
        postcopyToEnd(saver, ram);
        break;
      } catch (IOException | RuntimeException e) {
        LOG.debug("postcopy connection lost", e);
        pauseUntilResumed(saver, ram, message(e));
      }
    }
    stats.remainingBytes(0);
    state.transition(MigrationStatus.POSTCOPY_ACTIVE, MigrationStatus.COMPLETED, "completed");
  }

  /** Postcopy on the current connection: background pages and requests, END(ram), EOF, SHUT. */
  private void postcopyToEnd(StateSaver saver, RamPostcopySave ram) throws IOException, InterruptedException {
    RateLimiter r = rate;
    MigrationOutput o = out;
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
    synchronized (pauseLock) {
      // a migrate-pause from here on is refused; one that shut the connection before this point
      // made finish() fail (or the destination sees a cut stream): both sides pause, recovery resends
      postcopyStreamSent = o.error() == null;
    }
    stats.postcopyBytes.addAndGet(o.position() - at);
    if (!shut.await(SHUT_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
      throw new IOException("the destination did not confirm the end of postcopy within " + SHUT_TIMEOUT_MS + " ms");
    }
    checkReturnPath();
    if (shutStatus != 0) {
      throw new IOException("the destination failed to load the state (return path SHUT " + shutStatus + ")");
    }
  }

  /**
   * postcopy-paused (QEMU's postcopy_pause on the source): the connection goes, and this thread
   * waits for migrate resume=true, then runs the recovery handshake on the new connection; a
   * failure there pauses again. Returns once postcopy is active again.
   */
  private void pauseUntilResumed(StateSaver saver, RamPostcopySave ram, String error) throws InterruptedException {
    String why = pausedReason(error);
    LOG.warn("{}", why);
    postcopyStreamSent = false; // the next connection sends the rest again
    state.transitionFromCurrent(MigrationStatus.POSTCOPY_PAUSED, why);
    dropConnection();
    while (true) {
      Connector next;
      settle(true);
      try {
        next = resumeRequests.take();
      } finally {
        settle(false);
      }
      MigrationChannel c;
      try {
        c = next.connect();
      } catch (IOException | RuntimeException e) {
        String w = pausedReason("resume: " + message(e));
        LOG.warn("{}", w);
        state.pausedError(w);
        continue;
      }
      try {
        recover(saver, ram, c);
        return;
      } catch (IOException | RuntimeException e) {
        String w = pausedReason("recovery failed: " + message(e));
        LOG.warn("{}", w);
        state.transitionFromCurrent(MigrationStatus.POSTCOPY_PAUSED, w);
        dropConnection();
      }
    }
  }

  /** Shuts and closes the current connection; its return-path reader no longer counts. */
  private void dropConnection() {
    linkGeneration++;
    shutAndClose();
  }

  /** Shuts and closes the current connection, each step guarded. */
  private void shutAndClose() {
    MigrationChannel c = connection.get();
    if (c != null) {
      guard("shutting the connection down", c::shutdown);
      guard("closing the connection", () -> closeQuietly(c));
    }
  }

  /** Both halves of the recovery handshake the source waits for on the return path. */
  private static final class Recovery {
    final CountDownLatch bitmaps;
    final CountDownLatch ack = new CountDownLatch(1);
    final java.util.concurrent.atomic.AtomicInteger bitmapsApplied = new java.util.concurrent.atomic.AtomicInteger();
    volatile boolean acked;

    Recovery(int blocks) {
      bitmaps = new CountDownLatch(blocks);
    }

    void abort() {
      while (bitmaps.getCount() > 0) {
        bitmaps.countDown();
      }
      ack.countDown();
    }
  }

  /**
   * The recovery handshake on a new connection (QEMU 7.2's postcopy_do_resume): no header; one
   * RECV_BITMAP per RAM block, each answered with the destination's received bitmap, which
   * becomes "dirty = not received"; POSTCOPY_RESUME, answered by RESUME_ACK(1); then postcopy goes
   * on over this connection (the destination asks again for the pages it waits for).
   */
  private void recover(StateSaver saver, RamPostcopySave ram, MigrationChannel c)
      throws IOException, InterruptedException {
    MigrationOutput lost = out;
    if (lost != null) {
      bytesOnLostConnections += lost.position();
    }
    MigrationOutput o = new MigrationOutput(c);
    out = o;
    connection.set(c);
    int gen = ++linkGeneration;
    returnPathError = null;
    shutStatus = -1;
    CountDownLatch shutNow = new CountDownLatch(1);
    shut = shutNow;
    List<String> blocks = ram.blockNames();
    Recovery rec = new Recovery(blocks.size());
    recovery = rec;
    if (!state.transition(MigrationStatus.POSTCOPY_PAUSED, MigrationStatus.POSTCOPY_RECOVER, "migrate resume to " + c.peerDescription())) {
      throw new IOException("the migration is no longer postcopy-paused (" + state.status().qapiName() + ")");
    }
    if (!c.supportsReturnPath()) {
      throw new IOException(c.peerDescription() + " has no return path, which postcopy recovery needs");
    }
    Thread.ofPlatform().name("migration-rp").daemon().start(() -> readReturnPath(c, gen, shutNow));
    StreamWriter w = new StreamWriter(o);
    saver.continueOn(w);
    for (String name : blocks) {
      w.writeCommand(new StreamCommand.RecvBitmap(name));
    }
    w.flush();
    awaitRecoveryStep(rec.bitmaps, "the received bitmaps (RECV_BITMAP) of " + blocks.size() + " RAM blocks");
    if (rec.bitmapsApplied.get() != blocks.size()) {
      throw new IOException("the destination answered " + rec.bitmapsApplied.get() + " of " + blocks.size() + " RECV_BITMAP commands");
    }
    ram.resume(o);
    w.writeCommand(new StreamCommand.PostcopyResume());
    w.flush();
    awaitRecoveryStep(rec.ack, "RESUME_ACK");
    if (!rec.acked) {
      throw new IOException("the destination did not acknowledge POSTCOPY_RESUME");
    }
    recovery = null;
    RateLimiter r = new RateLimiter(o::position, System::nanoTime, params.maxPostcopyBandwidthBytesPerSec());
    rate = r;
    state.transition(MigrationStatus.POSTCOPY_RECOVER, MigrationStatus.POSTCOPY_ACTIVE, "postcopy resumed");
    lastRecoveryMs = (System.nanoTime() - resumeRequestedNs) / 1_000_000;
    LOG.info("postcopy resumed over {} in {} ms", c.peerDescription(), lastRecoveryMs);
  }

  private void awaitRecoveryStep(CountDownLatch latch, String what) throws IOException, InterruptedException {
    if (!latch.await(SHUT_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
      throw new IOException("postcopy recovery: " + what + " did not arrive within " + SHUT_TIMEOUT_MS / 1000 + " s");
    }
    checkReturnPath();
  }

  private void checkReturnPath() throws IOException {
    Throwable t = returnPathError;
    if (t != null) {
      throw new IOException("return path failed: " + t.getMessage(), t);
    }
  }

  private void readReturnPath(MigrationChannel c, int gen, CountDownLatch shutLatch) {
    ReturnPath.Reader reader =
        new ReturnPath.Reader(
            new MigrationInput(c),
            new ReturnPath.Handler() {
              @Override
              public void shut(long status) {
                shutStatus = status;
              }

              @Override
              public void pong(long value) {
                LoadBacklog b = backlog;
                if (b != null) {
                  b.ponged(value);
                }
              }

              @Override
              public void requestPages(String blockName, long start, long length) throws IOException {
                stale();
                RamPostcopySave ram = postcopySave;
                if (ram == null) {
                  throw new MigrationStreamException("unexpected page request on the return path (postcopy-ram is off)");
                }
                stats.addPostcopyRequest();
                ram.queuePageRequest(blockName, start, length);
                wakeUp();
              }

              /** A lost connection's reader stops here instead of touching the next connection's state. */
              private void stale() throws IOException {
                if (gen != linkGeneration) {
                  throw new IOException("return path of a lost connection");
                }
              }

              @Override
              public long receivedBitmapBytes(String blockName) {
                RamPostcopySave ram = postcopySave;
                return ram == null || recovery == null ? -1 : ram.receivedBitmapBytes(blockName);
              }

              @Override
              public void receivedBitmap(String blockName, byte[] bitmap) throws IOException {
                stale();
                Recovery rec = recovery;
                if (rec == null || rec.bitmaps.getCount() == 0) {
                  throw new MigrationStreamException("unexpected RECV_BITMAP of block '" + blockName + "' on the return path");
                }
                postcopySave.receivedBitmap(blockName, bitmap);
                rec.bitmapsApplied.incrementAndGet();
                rec.bitmaps.countDown();
              }

              @Override
              public void resumeAck(long value) throws IOException {
                stale();
                Recovery rec = recovery;
                if (rec == null) {
                  throw new MigrationStreamException("unexpected RESUME_ACK on the return path (no postcopy recovery runs)");
                }
                if (value != 1) {
                  throw new MigrationStreamException("RESUME_ACK " + value + " on the return path, expected 1");
                }
                rec.acked = true;
                rec.ack.countDown();
              }
            });
    try {
      while (!reader.readOne()) {
        // PONGs and the like
      }
    } catch (IOException | RuntimeException e) {
      if (gen == linkGeneration && state.status().isActive() && !cancelling()) {
        returnPathError = e;
        wakeUp(); // a postcopy migration waiting for its window notices now
      }
    } finally {
      Recovery rec = recovery;
      if (rec != null && gen == linkGeneration) {
        rec.abort(); // a recovery waiting for bitmaps or the ack wakes and sees why
      }
      shutLatch.countDown();
    }
  }

  /** Thrown inside the thread when a cancel was seen. */
  private static final class CancelledException extends RuntimeException {
    CancelledException() {
      super("cancelled", null, false, false);
    }
  }
}
