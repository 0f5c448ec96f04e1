package dev.ferry.api;

import dev.ferry.migration.IncomingMigration;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationManager;
import dev.ferry.migration.MigrationState;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.OutgoingMigration;
import java.io.IOException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One migration, outgoing ({@link FerryMachine#migrate}) or incoming ({@link
 * FerryMachine#incoming}), running in the background: its status, statistics and error, a way to
 * wait for its end, for an outgoing one {@link #cancel()}, {@link #startPostcopy()} and {@link
 * #continueSwitchover()}, and postcopy recovery ({@link #pause()}, {@link #recover(String)} on the
 * destination, {@link #resume(String)} on the source). Events go to the machine's listeners ({@link
 * FerryMachine#addMigrationListener}).
 *
 * <p>A handle is bound to its own migration: the status, error and statistics are this
 * migration's, and stay as they were at its end when the machine migrates again (QEMU's {@code
 * query-migrate} shows only the last one). Thread-safe.
 */
public final class Migration {
  private final MigrationEvent.Direction direction;
  private final MigrationManager manager;
  private final MigrationState state;
  private final CountDownLatch listening = new CountDownLatch(1);
  private final CountDownLatch done = new CountDownLatch(1);
  private final long startNs = System.nanoTime();
  /** Outgoing: this migration's engine object (its statistics are its own). */
  private volatile OutgoingMigration outgoing;
  /** Incoming: this load's engine object, once it listens. */
  private volatile IncomingMigration incoming;
  private volatile long endNs;
  private volatile String boundUri;
  private volatile Exception failure;
  /** This migration's status and error, followed from the shared state until its end. */
  private volatile dev.ferry.migration.MigrationStatus status = dev.ferry.migration.MigrationStatus.NONE;

  private volatile String errorDesc;
  /** Incoming: {@link #recover} was called during the current pause. */
  private volatile boolean recovering;
  /** Wakes {@link #await}: a status change or the end. */
  private final Object settled = new Object();

  private final MigrationListener tracker =
      new MigrationListener() {
        @Override
        public void statusChanged(
            dev.ferry.migration.MigrationStatus from, dev.ferry.migration.MigrationStatus to, String reason) {
          if (!from.next().contains(to)) {
            return; // an announcement (migrate-recover's "setup" while paused), not a move
          }
          track(to, reason);
        }
      };

  private Migration(MigrationEvent.Direction direction, MigrationManager manager, MigrationState state) {
    this.direction = direction;
    this.manager = manager;
    this.state = state;
  }

  /**
   * Starts migrating to {@code uri} with the manager's capabilities and parameters; the handle
   * follows the status from before the migration thread starts.
   */
  static Migration outgoing(MigrationManager m, String uri) {
    Migration mig = new Migration(MigrationEvent.Direction.OUTGOING, m, m.outgoingState());
    m.outgoingState().addListener(mig.tracker);
    try {
      mig.outgoing = m.migrate(uri);
    } catch (RuntimeException e) {
      m.outgoingState().removeListener(mig.tracker);
      throw e;
    }
    return mig;
  }

  /** A handle for the incoming migration about to be started on {@code m}. */
  static Migration incoming(MigrationManager m) {
    Migration mig = new Migration(MigrationEvent.Direction.INCOMING, m, m.incomingState());
    m.incomingState().addListener(mig.tracker);
    return mig;
  }

  private void track(dev.ferry.migration.MigrationStatus to, String reason) {
    synchronized (settled) {
      if (status.isFinal() && to == dev.ferry.migration.MigrationStatus.SETUP) {
        return; // the next migration: this handle keeps its end
      }
      status = to;
      if (to == dev.ferry.migration.MigrationStatus.POSTCOPY_PAUSED) {
        recovering = false;
      }
      if (to == dev.ferry.migration.MigrationStatus.FAILED || to == dev.ferry.migration.MigrationStatus.POSTCOPY_PAUSED) {
        errorDesc = reason;
      }
      if (to.isFinal() && direction == MigrationEvent.Direction.OUTGOING) {
        state.removeListener(tracker);
      }
      settled.notifyAll();
    }
  }

  /** Which side this machine is. */
  public MigrationEvent.Direction direction() {
    return direction;
  }

  /** This migration's status now (its final one once it ended). */
  public MigrationStatus status() {
    MigrationStatus s = MigrationStatus.of(status);
    if (failure != null && !s.isFinal() && s != MigrationStatus.POSTCOPY_PAUSED) {
      return MigrationStatus.FAILED; // failed before the stream was read (e.g. the listen)
    }
    return s;
  }

  /** Why it failed or paused (QEMU's {@code error-desc}), or empty. */
  public Optional<String> error() {
    MigrationStatus s = status();
    if (s != MigrationStatus.FAILED && s != MigrationStatus.POSTCOPY_PAUSED) {
      return Optional.empty();
    }
    String e = errorDesc;
    if (e == null && failure != null) {
      e = failure.getMessage() != null ? failure.getMessage() : failure.toString();
    }
    return Optional.ofNullable(e);
  }

  /** This migration's figures as of now, or as of its end once it ended. */
  public MigrationStatistics statistics() {
    OutgoingMigration o = outgoing;
    if (o != null) {
      MigrationStats.Snapshot s = o.info();
      return new MigrationStatistics(
          s.transferredBytes(),
          s.remainingBytes(),
          s.totalRamBytes(),
          s.duplicatePages(),
          s.normalPages(),
          s.passes(),
          s.mbps(),
          s.totalTimeMs(),
          s.setupTimeMs(),
          s.downtimeMs(),
          s.expectedDowntimeMs(),
          s.postcopyRequests(),
          s.cpuThrottlePercentage());
    }
    IncomingMigration in = incoming;
    long end = endNs != 0 ? endNs : System.nanoTime();
    return new MigrationStatistics(
        in == null ? 0 : in.receivedBytes(), 0, 0, 0, 0, 0, 0, (end - startNs) / 1_000_000, 0, 0, 0, 0, 0);
  }

  /**
   * Waits until the migration ended (completed, failed or cancelled) or paused in postcopy
   * (postcopy-paused: it waits for a recovery, see {@link #recover} and {@link #resume}) and returns
   * that status. An incoming migration has ended once the machine's run state after it was decided
   * (running or paused). After a resume or a recover it waits for the recovered migration.
   *
   * @throws TimeoutException when it has not ended within {@code timeout}
   * @throws InterruptedException when interrupted while waiting
   */
  public MigrationStatus await(Duration timeout) throws InterruptedException, TimeoutException {
    OutgoingMigration o = outgoing;
    if (o != null) {
      // the engine's own wait knows a resume in flight; the status is tracked before it wakes
      if (o.await(timeout.toNanos(), TimeUnit.NANOSECONDS) == null) {
        throw new TimeoutException("migration still " + status().qapiName() + " after " + timeout.toMillis() + " ms");
      }
      return status();
    }
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (settled) {
      while (!settledNow()) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new TimeoutException(
              "incoming migration still " + status().qapiName() + " after " + timeout.toMillis() + " ms");
        }
        TimeUnit.NANOSECONDS.timedWait(settled, left);
      }
    }
    return status();
  }

  /** Incoming: ended, or paused and not (yet) told to recover. */
  private boolean settledNow() {
    return done.getCount() == 0 || status == dev.ferry.migration.MigrationStatus.POSTCOPY_PAUSED && !recovering;
  }

  /**
   * Incoming: the URI it listens on once listening (a tcp port 0 resolved), for the source to
   * connect to.
   *
   * @throws IllegalStateException for an outgoing migration, or when the listen failed
   * @throws TimeoutException when it does not listen within {@code timeout}
   * @throws InterruptedException when interrupted while waiting
   */
  public String listeningUri(Duration timeout) throws InterruptedException, TimeoutException {
    if (direction == MigrationEvent.Direction.OUTGOING) {
      throw new IllegalStateException("an outgoing migration does not listen");
    }
    if (!listening.await(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
      throw new TimeoutException("incoming migration not listening after " + timeout.toMillis() + " ms");
    }
    String u = boundUri;
    if (u == null) {
      throw new IllegalStateException("the incoming migration failed before it listened: " + error().orElse("unknown error"));
    }
    return u;
  }

  /**
   * Cancels an outgoing migration (QEMU's {@code migrate_cancel}): the source runs on as before.
   * After the postcopy switch there is nothing to go back to and this does nothing.
   *
   * @throws IllegalStateException for an incoming migration (QEMU cannot cancel one either)
   */
  public void cancel() {
    outgoingOnly("an incoming migration cannot be cancelled; close the machine instead").cancel();
  }

  /**
   * Switches an outgoing migration to postcopy (QEMU's {@code migrate-start-postcopy}): the
   * destination runs the guest at once and pulls the pages it lacks. Needs {@link
   * MigrationOptions.Capability#POSTCOPY_RAM} on both sides.
   *
   * @throws IllegalStateException for an incoming migration, or with QEMU's words when postcopy
   *     is not possible
   */
  public void startPostcopy() {
    outgoingOnly("postcopy is started on the source");
    requireCurrent();
    manager.startPostcopy();
  }

  /**
   * Releases an outgoing migration waiting in {@link MigrationStatus#PRE_SWITCHOVER} (QEMU's {@code
   * migrate-continue}, with {@link MigrationOptions.Capability#PAUSE_BEFORE_SWITCHOVER}).
   *
   * @throws IllegalStateException for an incoming migration, or with QEMU's words when the
   *     migration is not in pre-switchover
   */
  public void continueSwitchover() {
    outgoingOnly("migrate-continue is for the source")
        .continueFromPause(dev.ferry.migration.MigrationStatus.PRE_SWITCHOVER);
  }

  // ---------------------------------------------------------------- postcopy recovery

  /**
   * Pauses this postcopy migration (QEMU's {@code migrate-pause}): the connection is shut and both
   * sides go {@link MigrationStatus#POSTCOPY_PAUSED}; the destination's guest runs on with the
   * pages it has (a vCPU that touches a missing one waits). Recover with {@link #recover} on the
   * destination, then {@link #resume} on the source. Either side may pause.
   *
   * @throws IllegalStateException with QEMU's words unless the migration is postcopy-active
   */
  public void pause() {
    OutgoingMigration o = outgoing;
    IncomingMigration in = incoming;
    boolean paused = o != null ? o.pausePostcopy() : in != null && in.pausePostcopy();
    if (!paused) {
      throw new IllegalStateException("migrate-pause is currently only supported during postcopy-active state");
    }
  }

  /**
   * Destination: listens on {@code uri} for the source's resume of this postcopy-paused migration
   * (QEMU's {@code migrate-recover}); the load continues on the first connection. Returns the URI
   * it listens on (a tcp port 0 resolved), to give to the source's {@link #resume}.
   *
   * @throws IllegalStateException for an outgoing migration, or with QEMU's words when not paused
   *     or already recovering
   * @throws IllegalArgumentException for a bad URI
   * @throws IOException when the listener cannot be opened
   */
  public String recover(String uri) throws IOException {
    if (direction != MigrationEvent.Direction.INCOMING) {
      throw new IllegalStateException("migrate-recover is for the destination; the source resumes");
    }
    if (incoming == null || manager.incoming() != incoming) {
      throw new IllegalStateException("Migrate recover can only be run when postcopy is paused.");
    }
    String[] bound = new String[1];
    recovering = true;
    try {
      manager.recover(uri, b -> bound[0] = b);
    } catch (IOException | RuntimeException e) {
      recovering = false;
      throw e;
    }
    return bound[0];
  }

  /**
   * Source: resumes this postcopy-paused migration on {@code uri}, the destination's {@link
   * #recover} listener (QEMU's {@code migrate} with {@code resume: true}): the status goes
   * postcopy-recover, then postcopy-active once both sides agreed on the pages still missing, and
   * the migration ends as usual. With the TLS and capabilities it started with.
   *
   * @throws IllegalStateException for an incoming migration, or with QEMU's words when not paused
   * @throws IllegalArgumentException for a bad URI
   */
  public void resume(String uri) {
    outgoingOnly("the source resumes; the destination recovers");
    requireCurrent();
    manager.resume(uri);
  }

  private OutgoingMigration outgoingOnly(String why) {
    OutgoingMigration o = outgoing;
    if (o == null) {
      throw new IllegalStateException(why);
    }
    return o;
  }

  /** The manager acts on its latest migration: refuse when that is another one. */
  private void requireCurrent() {
    if (manager.outgoing() != outgoing) {
      throw new IllegalStateException("this migration ended; a later one is the machine's current migration");
    }
  }

  // ---------------------------------------------------------------- incoming side, from FerryMachine

  void listeningOn(String uri) {
    incoming = manager.incoming();
    boundUri = uri;
    listening.countDown();
  }

  void finished(Exception error) {
    failure = error;
    endNs = System.nanoTime();
    listening.countDown();
    state.removeListener(tracker);
    synchronized (settled) {
      done.countDown();
      settled.notifyAll();
    }
  }

  @Override
  public String toString() {
    return "Migration[" + direction + ", " + status().qapiName() + "]";
  }
}
