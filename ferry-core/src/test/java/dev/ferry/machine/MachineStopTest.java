package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.PipeConnection;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 8 item 5, second bullet: pausing the vCPUs has a deadline and can be cancelled. A guest step
 * that does not return makes a stop, a switch-over or a dirty sync fail with a message naming it,
 * and the source runs on; a cancel gets through at once. Last bullet: close joins the
 * preallocation thread before unmapping RAM.
 */
@Timeout(120)
class MachineStopTest {
  private static final long MEMORY = 4 << 20;

  /**
   * Increments a counter page per step; while {@link #stuck} is set, cpu 0's step blocks until
   * {@link #release} (a step that does not return). Other cpus keep stepping.
   */
  static final class StuckProgram implements GuestProgram {
    volatile boolean stuck;
    final CountDownLatch entered = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);

    @Override
    public String name() {
      return "stuck";
    }

    @Override
    public void step(GuestContext ctx) {
      CpuDevice cpu = ctx.cpu();
      long n = cpu.reg(0) + 1;
      cpu.setReg(0, n);
      long pages = ctx.memory().pageCount(0);
      ctx.memory().putLong(0, (n % pages) * 4096 + cpu.index() * 8L, n);
      if (stuck && cpu.index() == 0) {
        entered.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return;
      }
      ctx.idle(200_000);
    }
  }

  static Machine machine(StuckProgram p, int vcpus, Duration stopTimeout) {
    return Machine.builder().memory(MEMORY).program(p).vcpus(vcpus).stopTimeout(stopTimeout).build();
  }

  static void awaitSteps(CpuDevice cpu, long atLeast) throws InterruptedException {
    while (cpu.steps() < atLeast) {
      Thread.sleep(1);
    }
  }

  @Test
  void aStopThatTimesOutNamesTheVcpuAndTheMachineRunsOn() throws Exception {
    StuckProgram p = new StuckProgram();
    try (Machine m = machine(p, 2, Duration.ofMillis(200))) {
      m.resume();
      p.stuck = true;
      p.entered.await();
      assertThatThrownBy(() -> m.stop(RunState.PAUSED, 200, TimeUnit.MILLISECONDS))
          .isInstanceOf(TimeoutException.class)
          .hasMessage("vCPU 0 did not stop within 200 ms (a guest step that does not return)");
      assertThat(m.runState()).isEqualTo(RunState.RUNNING);
      // cpu 1 had parked for the stop; it runs on
      long s1 = m.cpu(1).steps();
      awaitSteps(m.cpu(1), s1 + 10);
      // the untimed form says the same in an IllegalStateException
      assertThatThrownBy(m::pause).isInstanceOf(IllegalStateException.class).hasMessageContaining("vCPU 0 did not stop");
      assertThat(m.isRunning()).isTrue();
      p.stuck = false;
      p.release.countDown();
      m.pause();
      assertThat(m.runState()).isEqualTo(RunState.PAUSED);
    }
  }

  @Test
  void aStopIsInterruptibleAndLeavesTheMachineRunning() throws Exception {
    StuckProgram p = new StuckProgram();
    try (Machine m = machine(p, 1, Duration.ofMinutes(10))) {
      m.resume();
      p.stuck = true;
      p.entered.await();
      CompletableFuture<Throwable> stop = new CompletableFuture<>();
      Thread t = Thread.ofPlatform().start(() -> {
        try {
          m.stop(RunState.PAUSED, 10, TimeUnit.MINUTES);
          stop.complete(null);
        } catch (Throwable e) {
          stop.complete(e);
        }
      });
      while (t.getState() != Thread.State.TIMED_WAITING) {
        Thread.sleep(1);
      }
      t.interrupt();
      assertThat(stop.get(30, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
      assertThat(m.runState()).isEqualTo(RunState.RUNNING);
      p.stuck = false;
      p.release.countDown();
      long s = m.cpu(0).steps();
      awaitSteps(m.cpu(0), s + 10);
      m.pause();
    }
  }

  /** Migrates {@code src} to a fresh destination, completes, and compares both exactly. */
  static void migrateAndCompare(MachineHost src, StuckProgram program) throws Exception {
    PipeConnection[] pair = PipeConnection.pair();
    try (MachineHost dst = new MachineHost(machine(program, src.machine().cpus().size(), Duration.ofSeconds(10)))) {
      CompletableFuture<Void> load = CompletableFuture.runAsync(() -> {
        try (PipeConnection c = pair[1]) {
          dst.incoming(c);
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      });
      OutgoingMigration o = src.migration().migrate(() -> pair[0]);
      assertThat(o.await(60, TimeUnit.SECONDS)).as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      load.get(60, TimeUnit.SECONDS);
      ExactState.assertSame(src, dst);
    }
  }

  @Test
  void aStepThatDoesNotReturnFailsTheMigrationNamingItAndTheSourceRunsOn() throws Exception {
    StuckProgram p = new StuckProgram();
    try (MachineHost src = new MachineHost(machine(p, 2, Duration.ofMillis(300)))) {
      src.machine().resume();
      p.stuck = true;
      p.entered.await();
      PipeConnection[] pair = PipeConnection.pair();
      Thread drain = drain(pair[1]);
      OutgoingMigration o = src.migration().migrate(() -> pair[0]);
      assertThat(o.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc())
          .contains("did not", "within 300 ms (a guest step that does not return)");
      assertThat(src.machine().runState()).isEqualTo(RunState.RUNNING);
      long s1 = src.machine().cpu(1).steps();
      awaitSteps(src.machine().cpu(1), s1 + 10);
      drain.join(30_000);
      // once the step returns, the same source migrates, exactly
      p.stuck = false;
      p.release.countDown();
      migrateAndCompare(src, p);
    }
  }

  @Test
  void migrateCancelGetsThroughAStepThatDoesNotReturn() throws Exception {
    StuckProgram p = new StuckProgram();
    try (MachineHost src = new MachineHost(machine(p, 1, Duration.ofMinutes(10)))) {
      src.machine().resume();
      p.stuck = true;
      p.entered.await();
      PipeConnection[] pair = PipeConnection.pair();
      Thread drain = drain(pair[1]);
      OutgoingMigration o = src.migration().migrate(() -> pair[0]);
      // the migration thread waits for the stuck vCPU (dirty log start or the switch-over)
      Thread mt = migrationThread();
      while (mt.isAlive() && mt.getState() != Thread.State.TIMED_WAITING) {
        Thread.sleep(1);
      }
      src.migration().cancel();
      assertThat(o.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.CANCELLED);
      assertThat(src.machine().runState()).isEqualTo(RunState.RUNNING);
      drain.join(30_000);
      p.stuck = false;
      p.release.countDown();
      migrateAndCompare(src, p);
    }
  }

  @Test
  void closeJoinsThePreallocationThreadBeforeUnmappingRam() throws Exception {
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<Boolean> ramAliveAtEnd = new CompletableFuture<>();
    CompletableFuture<Boolean> toldToStop = new CompletableFuture<>();
    Machine.Builder b = Machine.builder().memory(MEMORY).memPrealloc(true);
    // a preallocation that is slow to reach its next chunk boundary
    b.preallocator =
        (block, stop) -> {
          inside.countDown();
          try {
            release.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          toldToStop.complete(stop.getAsBoolean());
          ramAliveAtEnd.complete(block.memory().scope().isAlive());
        };
    Machine m = b.build();
    inside.await();
    CompletableFuture<Void> close = CompletableFuture.runAsync(m::close);
    // close() waits for the preallocation instead of unmapping under it
    while (m.runState() != RunState.SHUTDOWN) {
      Thread.sleep(1);
    }
    assertThat(close).isNotDone();
    release.countDown();
    close.get(30, TimeUnit.SECONDS);
    assertThat(toldToStop.get(30, TimeUnit.SECONDS)).as("close asked the preallocation to stop").isTrue();
    assertThat(ramAliveAtEnd.get()).as("RAM still mapped while the preallocation ran").isTrue();
    assertThat(m.preallocating()).isFalse();
    assertThat(m.ramBlocks().getFirst().memory().scope().isAlive()).as("RAM unmapped after close").isFalse();
  }

  private static Thread migrationThread() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals("migration") && t.isAlive())
        .findFirst()
        .orElseThrow();
  }

  private static Thread drain(PipeConnection c) {
    return Thread.ofPlatform().daemon().start(() -> {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(65536);
      try (c) {
        while (c.read(b.clear()) >= 0) {
          // discard
        }
      } catch (java.io.IOException ignored) {
        // the source closed or shut down
      }
    });
  }
}
