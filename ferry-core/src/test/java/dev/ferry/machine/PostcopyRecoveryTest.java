package dev.ferry.machine;

import static dev.ferry.machine.PostcopyMigrationTest.assertSameRamAndCpus;
import static dev.ferry.machine.PostcopyMigrationTest.await;
import static dev.ferry.machine.PostcopyMigrationTest.host;
import static dev.ferry.machine.PostcopyMigrationTest.mem;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.migration.PostcopyIncoming;
import dev.ferry.testing.FaultyChannel;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.TransportListener;
import dev.ferry.transport.Transports;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Postcopy recovery between two machines in this process (QEMU 7.2's pause/recover): a connection
 * lost after the switch pauses both sides, {@code migrate-recover} on the destination and {@code
 * migrate resume=true} on the source continue over a new connection (no header, RECV_BITMAP per
 * block, POSTCOPY_RESUME, RESUME_ACK), and the migration completes with the destination equal to
 * the stopped source. The two-process cuts at seeded points through a proxy are in ferry-cli
 * ({@code PostcopyRecoveryCutTest}).
 */
@Timeout(120)
class PostcopyRecoveryTest {
  @TempDir Path dir;

  /** One postcopy migration slowed down after the switch, so that it can be cut. */
  private final class Run {
    final MachineHost src;
    final MachineHost dst;
    final List<String> dstEvents = new CopyOnWriteArrayList<>();
    final List<String> srcEvents = new CopyOnWriteArrayList<>();
    final AtomicReference<MigrationChannel> firstChannel = new AtomicReference<>();
    final AtomicReference<Throwable> incomingFailure = new AtomicReference<>();
    CompletableFuture<Void> incoming;
    OutgoingMigration out;

    Run(MachineHost src, MachineHost dst) {
      this.src = src;
      this.dst = dst;
    }

    void start() throws Exception {
      src.machine().resume();
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      src.migration().setParameters(
          Map.of("max-bandwidth", 4L << 20, "downtime-limit", 1L, "max-postcopy-bandwidth", 512L << 10));
      dst.migration().addListener(recorder(dstEvents));
      src.migration().addListener(recorder(srcEvents));
      String uri = "unix:" + dir.resolve("first.sock");
      CountDownLatch listening = new CountDownLatch(1);
      incoming =
          CompletableFuture.runAsync(
              () -> {
                try (TransportListener l = Transports.listen(uri)) {
                  listening.countDown();
                  try (MigrationChannel c = l.accept()) {
                    firstChannel.set(c);
                    dst.incoming(c);
                  }
                } catch (Throwable t) {
                  incomingFailure.set(t);
                }
              });
      assertThat(listening.await(30, TimeUnit.SECONDS)).isTrue();
      out = src.migration().migrate(uri);
      src.migration().startPostcopy();
      await(() -> src.migration().outgoingState().status() == MigrationStatus.POSTCOPY_ACTIVE
          && dst.migration().incomingState().status() == MigrationStatus.POSTCOPY_ACTIVE);
    }

    void awaitBothPaused() throws Exception {
      assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      await(() -> dst.migration().incomingState().status() == MigrationStatus.POSTCOPY_PAUSED);
      assertThat(incoming).isNotDone(); // the load waits for a recovery, it did not end
    }

    /** migrate-recover on the destination; returns the bound URI. */
    String recover(String name) throws Exception {
      AtomicReference<String> bound = new AtomicReference<>();
      dst.migration().recover("unix:" + dir.resolve(name), bound::set);
      return bound.get();
    }

    void awaitCompleted() throws Exception {
      assertThat(out.await(60, TimeUnit.SECONDS))
          .as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      incoming.get(60, TimeUnit.SECONDS);
      assertThat(incomingFailure.get()).isNull();
      assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.machine().runState()).isEqualTo(RunState.POSTMIGRATE);
    }
  }

  /** The destination processed POSTCOPY_RUN: from now on a lost connection pauses instead of failing. */
  private static void awaitRunPhase(MachineHost dst) throws InterruptedException {
    await(() -> dst.migration().incoming().postcopy().state() == PostcopyIncoming.State.RUNNING);
  }

  private static MigrationListener recorder(List<String> events) {
    return new MigrationListener() {
      @Override
      public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
        events.add(to.qapiName());
      }
    };
  }

  @Test
  void migratePauseOnTheSourceThenRecoveryGivesTheStoppedSourcesExactState() throws Exception {
    try (MachineHost src = host("stress", mem(32 << 20));
        MachineHost dst = host("stress", mem(32 << 20))) {
      dst.setPostcopyAutostart(() -> false); // vCPUs held: the destination must equal the source
      Run run = new Run(src, dst);
      run.start();
      awaitRunPhase(dst);
      src.migration().pausePostcopy();
      run.awaitBothPaused();
      assertThat(src.migration().outgoingState().errorDesc()).contains("migrate-recover").contains("resume");
      assertThat(dst.migration().incomingState().errorDesc()).contains("migrate-recover").contains("pages are still missing");
      assertThat(src.machine().isRunning()).isFalse();
      // QEMU's state rules while paused
      assertThatThrownBy(() -> src.migration().pausePostcopy())
          .hasMessage("migrate-pause is currently only supported during postcopy-active state");
      assertThatThrownBy(() -> src.migration().recover("unix:" + dir.resolve("x.sock"), null))
          .hasMessage("Migrate recover can only be run when postcopy is paused.");
      String uri = run.recover("recover.sock");
      assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      assertThatThrownBy(() -> run.recover("again.sock")).hasMessage("Migrate recovery is triggered already");
      src.migration().setParameters(Map.of("max-postcopy-bandwidth", 0L));
      src.migration().resume(uri);
      run.awaitCompleted();
      assertThat(run.srcEvents).containsSubsequence(
          "postcopy-active", "postcopy-paused", "postcopy-recover", "postcopy-active", "completed");
      assertThat(run.dstEvents).containsSubsequence(
          "postcopy-active", "postcopy-paused", "setup", "postcopy-recover", "postcopy-active", "completed");
      assertThat(run.out.lastRecoveryMs()).isGreaterThanOrEqualTo(0);
      assertThatThrownBy(() -> src.migration().resume(uri)).hasMessage("Cannot resume if there is no paused migration");
      assertSameRamAndCpus(src, dst);
    }
  }

  @Test
  void runningDestinationWaitsWhilePausedAndAsksAgainAfterRecovery() throws Exception {
    try (MachineHost src = host("stress", mem(32 << 20));
        MachineHost dst = host("stress", mem(32 << 20))) {
      Run run = new Run(src, dst);
      run.start();
      await(() -> dst.machine().isRunning());
      awaitRunPhase(dst);
      run.firstChannel.get().shutdown(); // the connection dies under the destination
      run.awaitBothPaused();
      PostcopyIncoming pc = dst.migration().incoming().postcopy();
      // the stress guest sweeps all of RAM: it soon touches a page that is missing and waits
      await(() -> pc.waitedPages() > 0);
      assertThat(dst.machine().runState()).isEqualTo(RunState.RUNNING); // parked in a fault, not stopped
      long missing = pc.missingPages();
      assertThat(missing).isGreaterThan(0);
      String uri = run.recover("recover.sock");
      src.migration().setParameters(Map.of("max-postcopy-bandwidth", 0L));
      src.migration().resume(uri);
      run.awaitCompleted();
      assertThat(pc.requestsResent()).isGreaterThan(0);
      assertThat(pc.missingPages()).isZero();
      dst.machine().pause();
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
    }
  }

  @Test
  void aSecondCutDuringTheRecoveryHandshakePausesAgainAndTheNextRecoveryCompletes() throws Exception {
    try (MachineHost src = host("stress", mem(32 << 20));
        MachineHost dst = host("stress", mem(32 << 20))) {
      dst.setPostcopyAutostart(() -> false);
      Run run = new Run(src, dst);
      run.start();
      awaitRunPhase(dst);
      src.migration().pausePostcopy();
      run.awaitBothPaused();
      String first = run.recover("recover1.sock");
      // the recovery connection fails after 9 bytes: inside the RECV_BITMAP commands
      src.migration().resume(
          () -> FaultyChannel.failAfter(Transports.connect(first), FaultyChannel.Direction.WRITE, 9));
      await(() -> run.srcEvents.contains("postcopy-recover"));
      run.awaitBothPaused();
      await(() -> run.dstEvents.stream().filter("postcopy-paused"::equals).count() == 2);
      assertThat(src.migration().outgoingState().errorDesc()).contains("recovery failed");
      String second = run.recover("recover2.sock");
      src.migration().setParameters(Map.of("max-postcopy-bandwidth", 0L));
      src.migration().resume(second);
      run.awaitCompleted();
      assertThat(run.srcEvents.stream().filter("postcopy-recover"::equals).count()).isEqualTo(2);
      assertSameRamAndCpus(src, dst);
    }
  }
}
