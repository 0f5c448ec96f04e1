package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.vmstate.VMStateDescription;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The facade in-process: a device of the user's with versions, a subsection and hooks, a legacy
 * device and service threads, saved, loaded and migrated through {@link FerryMachine} only; every
 * case ends with the exact digest of the stopped source against the destination.
 */
class FerryMachineTest {
  private static final Duration WAIT = Duration.ofSeconds(60);

  /** A user device: a counter, flags added in v2, an optional "extra" subsection, hooks. */
  static final class Counter {
    long count;
    long flags;
    long extra;
    long shadow; // derived: count * 2, rebuilt by postLoad
    int preSaves;
    int loadedVersion = -1;
  }

  static final VMStateDescription<Counter> EXTRA =
      VMStateDescription.<Counter>builder("counter/extra")
          .version(1)
          .needed(c -> c.extra != 0)
          .uint64("extra", c -> c.extra, (c, v) -> c.extra = v)
          .build();

  static final VMStateDescription<Counter> COUNTER_V1 =
      VMStateDescription.<Counter>builder("counter")
          .version(1)
          .uint64("count", c -> c.count, (c, v) -> c.count = v)
          .preSave(c -> c.preSaves++)
          .postLoad((c, v) -> {
            c.shadow = c.count * 2;
            c.loadedVersion = v;
          })
          .build();

  static final VMStateDescription<Counter> COUNTER_V2 =
      VMStateDescription.<Counter>builder("counter")
          .version(2)
          .minimumVersion(1)
          .uint64("count", c -> c.count, (c, v) -> c.count = v)
          .uint32("flags", c -> c.flags, (c, v) -> c.flags = v).since(2)
          .subsection(EXTRA)
          .preSave(c -> c.preSaves++)
          .postLoad((c, v) -> {
            c.shadow = c.count * 2;
            c.loadedVersion = v;
          })
          .build();

  /** A legacy device: two longs by hand. */
  static final class Legacy {
    long a;
    long b;

    void save(DataOutput out) throws IOException {
      out.writeLong(a);
      out.writeLong(b);
    }

    void load(DataInput in, int version) throws IOException {
      a = in.readLong();
      b = version >= 1 ? in.readLong() : 0;
    }
  }

  private static FerryMachine.Builder machine(Counter c, VMStateDescription<Counter> vmsd, Legacy l) {
    return FerryMachine.builder()
        .ram("heap", 4 << 20)
        .ram("index", 1 << 20)
        .device("counter", vmsd, c)
        .legacyDevice("legacy", 0, 1, l::save, l::load);
  }

  /** Runs {@code steps} service-thread steps writing RAM and the device. */
  private static void work(FerryMachine m, Counter c, Legacy l, int steps) throws InterruptedException {
    try (GuestThread t = m.openGuestThread()) {
      for (int i = 0; i < steps; i++) {
        t.enterStep();
        try {
          long off = (i * 4096L + 8 * i) % (4 << 20);
          t.putLong(0, off, t.getLong(0, off) + i + 1);
          t.putInt(1, (i * 64L) % (1 << 20), i);
          c.count++;
          c.flags = i & 0xff;
          l.a += i;
          l.b = i;
        } finally {
          t.exitStep();
        }
      }
    }
  }

  @Test
  void migratesUserDevicesAndRamLiveWhileServiceThreadsRun(@TempDir Path dir) throws Exception {
    Counter sc = new Counter();
    Legacy sl = new Legacy();
    Counter dc = new Counter();
    Legacy dl = new Legacy();
    List<MigrationEvent> events = new CopyOnWriteArrayList<>();
    try (FerryMachine src = machine(sc, COUNTER_V2, sl).build();
        FerryMachine dst = machine(dc, COUNTER_V2, dl).build()) {
      src.addMigrationListener(events::add);
      src.start();
      sc.extra = 77;
      work(src, sc, sl, 2000);

      // autostart off: the destination is compared before its guest runs (its vCPU would step on)
      Migration in =
          dst.incoming("unix:" + dir.resolve("m.sock"), MigrationOptions.builder().autostart(false).build());
      String uri = in.listeningUri(WAIT);
      assertThat(dst.runState()).isEqualTo(RunState.INMIGRATE);

      // service threads keep writing during the migration: each step either before or after the stop
      AtomicBoolean stopWork = new AtomicBoolean();
      AtomicReference<Throwable> workerError = new AtomicReference<>();
      Thread worker = Thread.ofPlatform().start(() -> {
        try (GuestThread t = src.openGuestThread()) {
          long i = 0;
          while (!stopWork.get()) {
            if (!t.tryEnterStep(Duration.ofMillis(20))) {
              continue; // stopped (switch-over, then postmigrate)
            }
            try {
              long off = (i * 4096) % (4 << 20);
              t.putLong(0, off, t.getLong(0, off) + 1);
              sc.count++;
              i++;
            } finally {
              t.exitStep();
            }
          }
        } catch (Throwable e) {
          workerError.set(e);
        }
      });
      Migration out =
          src.migrate(uri, MigrationOptions.builder().downtimeLimit(Duration.ofMillis(300)).build());
      assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      stopWork.set(true);
      worker.join();
      assertThat(workerError.get()).isNull();

      assertThat(src.runState()).isEqualTo(RunState.POSTMIGRATE);
      assertThat(dst.runState()).isEqualTo(RunState.PAUSED);
      StateDigest a = src.digest();
      StateDigest b = dst.digest();
      assertThat(a.firstDifference(b)).isEmpty();
      assertThat(dc.count).isEqualTo(sc.count);
      assertThat(dc.extra).isEqualTo(77);
      assertThat(dc.shadow).isEqualTo(sc.count * 2);
      assertThat(dc.loadedVersion).isEqualTo(2);
      assertThat(dl.a).isEqualTo(sl.a);
      assertThat(dl.b).isEqualTo(sl.b);
      assertThat(sc.preSaves).isGreaterThan(0);
      assertThat(out.statistics().transferredBytes()).isGreaterThan(0);
      assertThat(events).anyMatch(e -> e instanceof MigrationEvent.StatusChanged s && s.to() == MigrationStatus.COMPLETED);
      assertThat(events).anyMatch(e -> e instanceof MigrationEvent.Pass);
    }
  }

  @Test
  void savesAndLoadsAndLoadsAnOlderDeviceVersion(@TempDir Path dir) throws Exception {
    Counter c1 = new Counter();
    Legacy l1 = new Legacy();
    Path v1File = dir.resolve("v1.ferry");
    StateDigest saved;
    try (FerryMachine m = machine(c1, COUNTER_V1, l1).build()) {
      m.start();
      work(m, c1, l1, 300);
      m.pause();
      m.save(v1File);
      saved = m.digest();
      assertThat(m.runState()).isEqualTo(RunState.PAUSED);
    }
    Counter c2 = new Counter();
    c2.flags = 5; // not in v1: stays as it was
    Legacy l2 = new Legacy();
    try (FerryMachine m = machine(c2, COUNTER_V2, l2).build()) {
      m.load(v1File);
      assertThat(m.runState()).isEqualTo(RunState.PAUSED);
      assertThat(c2.count).isEqualTo(c1.count);
      assertThat(c2.flags).isEqualTo(5);
      assertThat(c2.loadedVersion).isEqualTo(1);
      assertThat(c2.shadow).isEqualTo(c1.count * 2);
      assertThat(l2.a).isEqualTo(l1.a);
      // RAM is exact (device digests differ: v2 saves flags, v1 does not)
      assertThat(m.digest().ram()).isEqualTo(saved.ram());
    }
  }

  @Test
  void snapshotsRoundTripAndAFailedLoadNeedsAReset(@TempDir Path dir) throws Exception {
    Counter c = new Counter();
    Legacy l = new Legacy();
    try (FerryMachine m = machine(c, COUNTER_V2, l).snapshotDirectory(dir).build()) {
      m.start();
      work(m, c, l, 100);
      m.pause(); // the digest must be of what the snapshot holds: nothing runs in between
      m.saveSnapshot("one");
      StateDigest one = m.digest();
      m.start();
      work(m, c, l, 100);
      assertThat(m.digest().firstDifference(one)).isPresent();
      m.loadSnapshot("one");
      assertThat(m.runState()).isEqualTo(RunState.RUNNING); // it ran before the load
      m.pause();
      m.loadSnapshot("one"); // paused before: stays paused, so nothing ran since the load
      assertThat(m.runState()).isEqualTo(RunState.PAUSED);
      assertThat(m.digest().firstDifference(one)).isEmpty();
      assertThat(m.snapshots()).extracting(SnapshotInfo::name).containsExactly("one");

      // a snapshot cut short fails half-way: internal-error, and start() is refused
      Path file = dir.resolve("one.ferry");
      byte[] bytes = java.nio.file.Files.readAllBytes(file);
      java.nio.file.Files.write(dir.resolve("cut.ferry"), java.util.Arrays.copyOf(bytes, bytes.length / 2));
      java.nio.file.Files.copy(dir.resolve("one.meta"), dir.resolve("cut.meta"));
      assertThatThrownBy(() -> m.loadSnapshot("cut")).isInstanceOf(IOException.class);
      assertThat(m.runState()).isEqualTo(RunState.INTERNAL_ERROR);
      assertThatThrownBy(m::start).hasMessage("Resetting the Virtual Machine is required");
      m.loadSnapshot("one");
      assertThat(m.digest().firstDifference(one)).isEmpty();
      assertThatThrownBy(() -> m.loadSnapshot("none")).hasMessageContaining("not found");
      assertThat(m.runState()).isEqualTo(RunState.PAUSED);
    }
  }

  @Test
  void aStopWaitsForServiceStepsAndBlocksNewOnes() throws Exception {
    Counter c = new Counter();
    Legacy l = new Legacy();
    try (FerryMachine m = machine(c, COUNTER_V2, l).build()) {
      m.start();
      List<String> order = new ArrayList<>();
      java.util.concurrent.CountDownLatch inStep = new java.util.concurrent.CountDownLatch(1);
      java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
      Thread t = Thread.ofPlatform().start(() -> {
        try (GuestThread g = m.openGuestThread()) {
          g.enterStep();
          inStep.countDown();
          release.await();
          synchronized (order) {
            order.add("step ends");
          }
          g.exitStep();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      inStep.await();
      Thread pauser = Thread.ofPlatform().start(() -> {
        m.pause();
        synchronized (order) {
          order.add("paused");
        }
      });
      // the pause cannot finish while the step is open: wait until it is blocked in the stop
      while (pauser.getState() != Thread.State.WAITING && pauser.getState() != Thread.State.TIMED_WAITING) {
        Thread.onSpinWait();
      }
      release.countDown();
      pauser.join();
      t.join();
      assertThat(order).containsExactly("step ends", "paused");
      try (GuestThread g = m.openGuestThread()) {
        assertThat(g.tryEnterStep(Duration.ofMillis(50))).isFalse(); // paused: no new step
        assertThatThrownBy(() -> g.putLong(0, 0, 1)).hasMessageContaining("only inside a step");
      }
    }
  }
}
