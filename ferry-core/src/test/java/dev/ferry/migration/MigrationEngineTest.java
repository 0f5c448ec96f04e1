package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.LegacySaveStateEntry;
import dev.ferry.savevm.LiveStateHandler;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import dev.ferry.testing.PipeConnection;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class MigrationEngineTest {
  static final Configuration CFG = Configuration.of("ferry-test");

  static final class FakeVm implements MigrationVm {
    volatile boolean running = true;
    volatile boolean migrated;

    @Override public boolean running() { return running; }
    @Override public void pause() { running = false; }
    @Override public void resume() { running = true; }
    @Override public void migrated() { migrated = true; }
  }

  /** Live state with {@code chunks} chunks of 1 KiB to send; blocks in iterate when told to. */
  static final class Chunks implements LiveStateHandler {
    int left;
    final List<Integer> got = new ArrayList<>();
    volatile CountDownLatch gate;

    Chunks(int chunks) {
      left = chunks;
    }

    @Override public String idstr() { return "chunks"; }
    @Override public int instanceId() { return 0; }
    @Override public int version() { return 1; }
    @Override public void saveSetup(MigrationOutput out) throws IOException { out.writeBe32(0); }

    private void send(MigrationOutput out, int n) throws IOException {
      out.writeBe32(n);
      for (int i = 0; i < n; i++) {
        out.writeBe32(left--);
        out.writeZeros(1024);
      }
    }

    @Override
    public boolean saveIterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
      CountDownLatch g = gate;
      if (g != null) {
        try {
          g.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted");
        }
      }
      send(out, Math.min(left, 1));
      return left == 0;
    }

    @Override public void saveComplete(MigrationOutput out) throws IOException { send(out, left); }
    @Override public long pendingEstimateBytes() { return left * 1028L; }
    @Override public long pendingExactBytes() { return left * 1028L; }

    @Override
    public void load(MigrationInput in, int version, SectionType type) throws IOException {
      int n = in.readBe32();
      for (int i = 0; i < n; i++) {
        got.add(in.readBe32());
        in.skip(1024);
      }
      got.add(type == SectionType.START ? -1 : type == SectionType.END ? -2 : 0);
    }
  }

  static final class Cell {
    long value;
  }

  static SaveStateRegistry registry(Chunks live, Cell cell) {
    SaveStateRegistry r = new SaveStateRegistry();
    r.register(live);
    r.register(LegacySaveStateEntry.of("cell", 0, 1, out -> out.writeBe64(cell.value), (in, v) -> cell.value = in.readBe64()));
    return r;
  }

  @Test
  void completesWithReturnPathAndLeavesSourcePaused() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    Cell srcCell = new Cell();
    srcCell.value = 0x1234;
    FakeVm vm = new FakeVm();
    MigrationState srcState = new MigrationState("outgoing");
    List<String> events = new ArrayList<>();
    srcState.addListener(new MigrationListener() {
      @Override public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
        synchronized (events) { events.add(to.qapiName()); }
      }
    });
    OutgoingMigration out =
        new OutgoingMigration(registry(new Chunks(50), srcCell), vm, CFG, srcState,
            Set.of(MigrationCapability.RETURN_PATH), MigrationParameters.DEFAULT);

    Chunks dstLive = new Chunks(0);
    Cell dstCell = new Cell();
    IncomingMigration in =
        new IncomingMigration(registry(dstLive, dstCell), CFG, new MigrationState("incoming"), StreamReader.Options.DEFAULT);
    CompletableFuture<Void> dst = CompletableFuture.runAsync(() -> {
      try {
        in.load(pair[1]);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
    dst.get(30, TimeUnit.SECONDS);
    assertThat(dstCell.value).isEqualTo(0x1234);
    assertThat(dstLive.got.getFirst()).isEqualTo(-1);
    assertThat(dstLive.got.getLast()).isEqualTo(-2);
    assertThat(dstLive.got.stream().filter(v -> v > 0).toList()).hasSize(50).contains(50, 1);
    assertThat(vm.running).isFalse();
    assertThat(vm.migrated).isTrue();
    assertThat(in.state().status()).isEqualTo(MigrationStatus.COMPLETED);
    synchronized (events) {
      assertThat(events).containsExactly("setup", "active", "device", "completed");
    }
    MigrationStats.Snapshot s = out.info();
    assertThat(s.transferredBytes()).isGreaterThan(50 * 1024);
    assertThat(s.downtimeMs()).isGreaterThanOrEqualTo(0);
    assertThat(s.downtimeBytes()).isPositive();
  }

  @Test
  void cancelResumesTheSourceAndANewMigrationCanStart() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    FakeVm vm = new FakeVm();
    Chunks live = new Chunks(1000);
    live.gate = new CountDownLatch(1);
    MigrationState st = new MigrationState("outgoing");
    OutgoingMigration out = new OutgoingMigration(registry(live, new Cell()), vm, CFG, st, Set.of(), MigrationParameters.DEFAULT);
    // a destination that reads and discards, so writes do not block
    Thread drain = Thread.ofPlatform().daemon().start(() -> {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(65536);
      try {
        while (pair[1].read(b.clear()) >= 0) {
          // discard
        }
      } catch (IOException ignored) {
        // closed
      }
    });
    out.start(() -> pair[0]);
    while (st.status() != MigrationStatus.ACTIVE) {
      Thread.onSpinWait();
    }
    out.cancel();
    live.gate.countDown();
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.CANCELLED);
    assertThat(vm.running).isTrue();
    drain.join(10_000);

    // the same state object accepts a new migration right away
    PipeConnection[] again = PipeConnection.pair();
    Chunks live2 = new Chunks(3);
    OutgoingMigration out2 = new OutgoingMigration(registry(live2, new Cell()), vm, CFG, st, Set.of(), MigrationParameters.DEFAULT);
    IncomingMigration in2 = new IncomingMigration(registry(new Chunks(0), new Cell()), CFG, new MigrationState("incoming"), StreamReader.Options.DEFAULT);
    CompletableFuture<Void> dst = CompletableFuture.runAsync(() -> {
      try {
        in2.load(again[1]);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    out2.start(() -> again[0]);
    assertThat(out2.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
    dst.get(30, TimeUnit.SECONDS);
  }

  @Test
  void destinationFailureFailsTheSourceWhichKeepsRunning() throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    FakeVm vm = new FakeVm();
    MigrationState st = new MigrationState("outgoing");
    OutgoingMigration out = new OutgoingMigration(registry(new Chunks(5), new Cell()), vm, CFG, st,
        Set.of(MigrationCapability.RETURN_PATH), MigrationParameters.DEFAULT);
    // the destination is a different machine type: it refuses the stream
    IncomingMigration in = new IncomingMigration(registry(new Chunks(0), new Cell()), Configuration.of("other"),
        new MigrationState("incoming"), StreamReader.Options.DEFAULT);
    CompletableFuture<Throwable> dst = CompletableFuture.supplyAsync(() -> {
      try {
        in.load(pair[1]);
        return null;
      } catch (IOException e) {
        pair[1].shutdown();
        return e;
      }
    });
    out.start(() -> pair[0]);
    assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
    assertThat(st.errorDesc()).isNotBlank();
    assertThat(vm.running).isTrue();
    assertThat(dst.get(30, TimeUnit.SECONDS)).hasMessageContaining("Machine type received is 'ferry-test' and local is 'other'");
    assertThat(in.state().status()).isEqualTo(MigrationStatus.FAILED);
  }

  @Test
  void parametersAreCheckedByName() {
    assertThat(MigrationParameters.DEFAULT.apply(java.util.Map.of("downtime-limit", 20L)).downtimeLimitMs()).isEqualTo(20);
    assertThatThrownBy(() -> MigrationParameters.DEFAULT.apply(java.util.Map.of("downtime-limit", -1L)))
        .hasMessage("Parameter 'downtime-limit' expects a value between 0 and 2000000, got -1");
    assertThatThrownBy(() -> MigrationParameters.DEFAULT.apply(java.util.Map.of("compress-level", 1L)))
        .hasMessageContaining("Parameter 'compress-level' is unexpected");
    assertThatThrownBy(() -> MigrationParameters.DEFAULT.apply(java.util.Map.of("max-bandwidth", "fast")))
        .hasMessage("Invalid parameter type for 'max-bandwidth', expected: integer");
  }
}
