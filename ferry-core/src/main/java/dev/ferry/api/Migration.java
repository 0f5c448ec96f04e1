package dev.ferry.api;

import dev.ferry.migration.IncomingMigration;
import dev.ferry.migration.MigrationState;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.OutgoingMigration;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * One migration, outgoing ({@link FerryMachine#migrate}) or incoming ({@link
 * FerryMachine#incoming}), running in the background: its status, statistics and error, a way to
 * wait for its end, and for an outgoing one {@link #cancel()} and {@link #startPostcopy()}.
 * Events go to the machine's listeners ({@link FerryMachine#addMigrationListener}). Thread-safe.
 */
public final class Migration {
  private final MigrationEvent.Direction direction;
  private final MigrationState state;
  private final OutgoingMigration outgoing;
  private final Supplier<IncomingMigration> incoming;
  private final Runnable postcopyStarter;
  private final CountDownLatch listening = new CountDownLatch(1);
  private final CountDownLatch done = new CountDownLatch(1);
  private final long startNs = System.nanoTime();
  private volatile long endNs;
  private volatile String boundUri;
  private volatile Exception failure;

  private Migration(
      MigrationEvent.Direction direction,
      MigrationState state,
      OutgoingMigration outgoing,
      Supplier<IncomingMigration> incoming,
      Runnable postcopyStarter) {
    this.direction = direction;
    this.state = state;
    this.outgoing = outgoing;
    this.incoming = incoming;
    this.postcopyStarter = postcopyStarter;
  }

  /** {@code startPostcopy}: the manager's migrate-start-postcopy (QEMU's checks and words). */
  static Migration outgoing(OutgoingMigration o, Runnable startPostcopy) {
    return new Migration(MigrationEvent.Direction.OUTGOING, o.state(), o, null, startPostcopy);
  }

  static Migration incoming(MigrationState state, Supplier<IncomingMigration> in) {
    return new Migration(MigrationEvent.Direction.INCOMING, state, null, in, null);
  }

  /** Which side this machine is. */
  public MigrationEvent.Direction direction() {
    return direction;
  }

  /** The status now. */
  public MigrationStatus status() {
    MigrationStatus s = MigrationStatus.of(state.status());
    if (failure != null && !s.isFinal() && s != MigrationStatus.POSTCOPY_PAUSED) {
      return MigrationStatus.FAILED; // failed before the stream was read (e.g. the listen)
    }
    return s;
  }

  /** Why it failed (QEMU's {@code error-desc}), or empty. */
  public Optional<String> error() {
    String e = state.errorDesc();
    if (e == null && failure != null) {
      e = failure.getMessage() != null ? failure.getMessage() : failure.toString();
    }
    return status() == MigrationStatus.FAILED || status() == MigrationStatus.POSTCOPY_PAUSED
        ? Optional.ofNullable(e)
        : Optional.empty();
  }

  /** The figures as of now. */
  public MigrationStatistics statistics() {
    if (outgoing != null) {
      MigrationStats.Snapshot s = outgoing.info();
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
          s.postcopyRequests());
    }
    IncomingMigration in = incoming.get();
    long end = endNs != 0 ? endNs : System.nanoTime();
    return new MigrationStatistics(
        in == null ? 0 : in.receivedBytes(), 0, 0, 0, 0, 0, 0, (end - startNs) / 1_000_000, 0, 0, 0, 0);
  }

  /**
   * Waits until the migration ended (completed, failed or cancelled; an incoming one also when its
   * postcopy stream broke, postcopy-paused) and returns that status. An incoming migration has
   * ended once the machine's run state after it was decided (running or paused).
   *
   * @throws TimeoutException when it has not ended within {@code timeout}
   * @throws InterruptedException when interrupted while waiting
   */
  public MigrationStatus await(Duration timeout) throws InterruptedException, TimeoutException {
    long ns = timeout.toNanos();
    if (outgoing != null) {
      if (outgoing.await(ns, TimeUnit.NANOSECONDS) == null) {
        throw new TimeoutException("migration still " + status().qapiName() + " after " + timeout.toMillis() + " ms");
      }
      return status();
    }
    if (!done.await(ns, TimeUnit.NANOSECONDS)) {
      throw new TimeoutException("incoming migration still " + status().qapiName() + " after " + timeout.toMillis() + " ms");
    }
    return status();
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
    if (outgoing != null) {
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
    if (outgoing == null) {
      throw new IllegalStateException("an incoming migration cannot be cancelled; close the machine instead");
    }
    outgoing.cancel();
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
    if (outgoing == null) {
      throw new IllegalStateException("postcopy is started on the source");
    }
    postcopyStarter.run();
  }

  // ---------------------------------------------------------------- incoming side, from FerryMachine

  void listeningOn(String uri) {
    boundUri = uri;
    listening.countDown();
  }

  void finished(Exception error) {
    failure = error;
    endNs = System.nanoTime();
    listening.countDown();
    done.countDown();
  }

  @Override
  public String toString() {
    return "Migration[" + direction + ", " + status().qapiName() + "]";
  }
}
