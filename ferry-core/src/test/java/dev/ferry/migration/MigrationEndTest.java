package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationEngineTest.Cell;
import dev.ferry.migration.MigrationEngineTest.Chunks;
import dev.ferry.migration.MigrationEngineTest.FakeVm;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.StreamReader;
import dev.ferry.testing.PipeConnection;
import java.io.IOException;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 8 item 5, first bullet: whatever fails at the end of a migration (a listener that throws,
 * a source that cannot be resumed), the end still happens: the status leaves the active states
 * and {@code await} returns.
 */
@Timeout(60)
class MigrationEndTest {
  static final Configuration CFG = MigrationEngineTest.CFG;

  /** A listener that throws on every call. */
  static final class ThrowingListener implements MigrationListener {
    final AtomicInteger calls = new AtomicInteger();

    @Override
    public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
      calls.incrementAndGet();
      throw new IllegalStateException("listener failed on " + to.qapiName());
    }

    @Override
    public void pass(long pass) {
      calls.incrementAndGet();
      throw new IllegalStateException("listener failed on pass " + pass);
    }
  }

  @Test
  void aThrowingListenerNeitherFailsNorHangsACompletingMigration() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    Cell srcCell = new Cell();
    srcCell.value = 0x5eedL;
    FakeVm vm = new FakeVm();
    MigrationState st = new MigrationState("outgoing");
    ThrowingListener bad = new ThrowingListener();
    st.addListener(bad);
    OutgoingMigration out =
        new OutgoingMigration(MigrationEngineTest.registry(new Chunks(20), srcCell), vm, CFG, st,
            Set.of(MigrationCapability.RETURN_PATH), MigrationParameters.DEFAULT);
    Cell dstCell = new Cell();
    Chunks dstLive = new Chunks(0);
    MigrationState inState = new MigrationState("incoming");
    inState.addListener(new ThrowingListener());
    IncomingMigration in =
        new IncomingMigration(MigrationEngineTest.registry(dstLive, dstCell), CFG, inState, StreamReader.Options.DEFAULT);
    CompletableFuture<Void> dst = CompletableFuture.runAsync(() -> {
      try {
        in.load(pair[1]);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).as(String.valueOf(st.errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
    dst.get(30, TimeUnit.SECONDS);
    assertThat(bad.calls.get()).isGreaterThanOrEqualTo(4); // setup, active, device, completed
    assertThat(inState.status()).isEqualTo(MigrationStatus.COMPLETED);
    assertThat(vm.migrated).isTrue();
    // exact: the device state and every chunk arrived
    assertThat(dstCell.value).isEqualTo(srcCell.value);
    assertThat(dstLive.got.stream().filter(v -> v > 0).sorted().toList())
        .isEqualTo(java.util.stream.IntStream.rangeClosed(1, 20).boxed().toList());
  }

  /** Pauses, then loses the destination: the migration fails after the switch-over paused it. */
  static class PeerDiesAtPauseVm implements MigrationVm {
    private final PipeConnection destination;
    volatile boolean running = true;

    PeerDiesAtPauseVm(PipeConnection destination) {
      this.destination = destination;
    }

    @Override
    public boolean running() {
      return running;
    }

    @Override
    public void pause() {
      running = false;
      destination.shutdown();
    }

    @Override
    public void resume() {
      running = true;
    }
  }

  @Test
  void aThrowingListenerNeitherSkipsNorHangsTheEndOfAFailedMigration() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    PeerDiesAtPauseVm vm = new PeerDiesAtPauseVm(pair[1]);
    MigrationState st = new MigrationState("outgoing");
    st.addListener(new ThrowingListener());
    Cell srcCell = new Cell();
    srcCell.value = 7;
    OutgoingMigration out = new OutgoingMigration(MigrationEngineTest.registry(new Chunks(5), srcCell), vm, CFG, st,
        Set.of(), MigrationParameters.DEFAULT);
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
    assertThat(st.errorDesc()).isNotBlank();
    assertThat(vm.running).as("the source runs on").isTrue();
    assertThat(srcCell.value).isEqualTo(7);
  }

  @Test
  void aSourceThatCannotBeResumedStillEndsFailedNamingWhy() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    PeerDiesAtPauseVm closed =
        new PeerDiesAtPauseVm(pair[1]) {
          @Override
          public void resume() {
            throw new IllegalStateException("machine is closed");
          }
        };
    MigrationState st = new MigrationState("outgoing");
    Cell srcCell = new Cell();
    srcCell.value = 9;
    OutgoingMigration out = new OutgoingMigration(MigrationEngineTest.registry(new Chunks(5), srcCell), closed, CFG, st,
        Set.of(), MigrationParameters.DEFAULT);
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
    assertThat(st.errorDesc()).contains("the source could not be resumed: machine is closed");
    assertThat(closed.running).isFalse();
    assertThat(srcCell.value).isEqualTo(9);
    assertThat(st.status().isActive()).isFalse();
  }

  @Test
  void theWaitForShutIsBoundedAndNamed() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    FakeVm vm = new FakeVm();
    MigrationState st = new MigrationState("outgoing");
    Cell srcCell = new Cell();
    srcCell.value = 11;
    OutgoingMigration out = new OutgoingMigration(MigrationEngineTest.registry(new Chunks(5), srcCell), vm, CFG, st,
        Set.of(MigrationCapability.RETURN_PATH), MigrationParameters.DEFAULT);
    out.setShutTimeoutMs(300);
    // a destination that takes in the whole stream but never answers on the return path
    Thread drain = Thread.ofPlatform().daemon().start(() -> {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(65536);
      try {
        while (pair[1].read(b.clear()) >= 0) {
          // discard
        }
      } catch (IOException ignored) {
        // the source shut the connection down
      }
    });
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
    assertThat(st.errorDesc()).isEqualTo("destination pipe:source did not confirm the load (SHUT) within 300 ms");
    assertThat(vm.running).as("the source runs on").isTrue();
    assertThat(srcCell.value).isEqualTo(11);
    drain.join(30_000);
  }
}
