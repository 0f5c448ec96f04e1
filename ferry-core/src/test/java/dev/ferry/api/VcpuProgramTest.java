package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedder's own guest code on the vCPUs ({@link VcpuProgram}): it runs on every vCPU in the
 * machine's vCPU loop, a pause stops it between two steps (an invariant each step keeps holds in
 * every stopped state), it migrates with its registers and goes on where it stopped on the
 * destination, and auto-converge throttles it.
 */
@Timeout(120)
class VcpuProgramTest {
  static final Duration WAIT = Duration.ofSeconds(60);
  static final long HEAP = 4 << 20;
  static final int PAGES_PER_VCPU = (int) (HEAP / 2 / 4096);

  /**
   * Each step of vCPU i adds 1 to the long at the start of page (r0 mod pages) of its half of
   * "heap" and to its counter in "counters" at i*8, and counts in r0: whenever the machine is
   * stopped, the sum of a vCPU's page longs equals its counter (a step cut in half breaks that).
   */
  static final class Walk implements VcpuProgram {
    @Override
    public String name() {
      return "walk";
    }

    @Override
    public void step(Vcpu v) {
      long r0 = v.register(0);
      long off = v.index() * (HEAP / 2) + (r0 % PAGES_PER_VCPU) * 4096;
      v.putLong(0, off, v.getLong(0, off) + 1);
      v.putLong(1, v.index() * 8L, v.getLong(1, v.index() * 8L) + 1);
      v.setRegister(0, r0 + 1);
    }
  }

  static FerryMachine machine() {
    return FerryMachine.builder().ram("heap", HEAP).ram("counters", 4096).vcpus(2).vcpuProgram(new Walk()).build();
  }

  static long counter(FerryMachine m, int vcpu) {
    try (GuestThread t = m.openGuestThread()) {
      return t.getLong(1, vcpu * 8L);
    }
  }

  /** The invariant of {@link Walk} on a stopped machine. */
  static void assertConsistent(FerryMachine m) {
    try (GuestThread t = m.openGuestThread()) {
      for (int i = 0; i < 2; i++) {
        long sum = 0;
        for (int p = 0; p < PAGES_PER_VCPU; p++) {
          sum += t.getLong(0, i * (HEAP / 2) + p * 4096L);
        }
        assertThat(sum).as("vcpu %d: its pages against its counter", i).isEqualTo(t.getLong(1, i * 8L));
      }
    }
  }

  static void await(BooleanSupplier c, String what) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }

  @Test
  void runsOnEveryVcpuAndAPauseFallsBetweenSteps() throws Exception {
    try (FerryMachine m = machine()) {
      m.start();
      await(() -> counter(m, 0) > 5000 && counter(m, 1) > 5000, "both vCPUs to step");
      for (int round = 0; round < 5; round++) {
        m.pause();
        long c0 = counter(m, 0);
        assertConsistent(m);
        assertThat(counter(m, 0)).isEqualTo(c0); // nothing steps while paused
        m.start();
        await(() -> counter(m, 0) > c0, "vcpu 0 to step again");
      }
    }
  }

  @Test
  void migratesAndGoesOnWhereItStopped(@TempDir Path dir) throws Exception {
    try (FerryMachine src = machine();
        FerryMachine dst = machine()) {
      src.start();
      await(() -> counter(src, 1) > 1000, "the source to step");
      Migration in = dst.incoming("unix:" + dir.resolve("m.sock"), MigrationOptions.builder().autostart(false).build());
      Migration out = src.migrate(in.listeningUri(WAIT), MigrationOptions.builder().build());
      assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.digest().firstDifference(dst.digest())).isEmpty();
      assertConsistent(dst);
      long moved = counter(dst, 0);
      dst.start();
      await(() -> counter(dst, 0) > moved + 1000, "the destination's vCPU to go on");
      dst.pause();
      assertConsistent(dst); // r0 travelled: the walk continued over the same pages
    }
  }

  @Test
  void autoConvergeThrottlesItAndAnOldHandleKeepsItsOwnEnd(@TempDir Path dir) throws Exception {
    try (FerryMachine src = machine();
        FerryMachine dst = machine()) {
      src.start();
      // the guest dirties far more than 256 KiB/s: precopy cannot converge, auto-converge throttles
      Migration first =
          src.migrate(
              "unix:" + dir.resolve("nowhere.sock.missing"),
              MigrationOptions.builder().build());
      assertThat(first.await(WAIT)).isEqualTo(MigrationStatus.FAILED);
      String firstError = first.error().orElseThrow();

      Migration in = dst.incoming("unix:" + dir.resolve("m.sock"), MigrationOptions.builder().autostart(false).build());
      String uri = in.listeningUri(WAIT);
      Migration throttled =
          src.migrate(
              uri,
              MigrationOptions.builder()
                  .enable(MigrationOptions.Capability.AUTO_CONVERGE)
                  .maxBandwidthBytesPerSec(256 << 10)
                  .downtimeLimit(Duration.ofMillis(1))
                  .cpuThrottleInitialPercent(40)
                  .cpuThrottleIncrementPercent(10)
                  .maxCpuThrottlePercent(60)
                  .build());
      await(() -> throttled.statistics().cpuThrottlePercent() >= 40, "auto-converge to throttle the vCPUs");
      long steps = counter(src, 0);
      await(() -> counter(src, 0) > steps + 100, "the throttled vCPU to step on");
      throttled.cancel();
      assertThat(throttled.await(WAIT)).isEqualTo(MigrationStatus.CANCELLED);
      assertThat(src.runState()).isEqualTo(RunState.RUNNING);
      MigrationStatistics cancelledFigures = throttled.statistics();
      assertThat(in.status()).isNotEqualTo(MigrationStatus.COMPLETED);

      // the destination refused the cancelled stream; a new incoming takes the next migration
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.FAILED);
      MigrationStatistics inFigures = in.statistics();
      Migration in2 = dst.incoming("unix:" + dir.resolve("m2.sock"), MigrationOptions.builder().autostart(false).build());
      Migration last = src.migrate(in2.listeningUri(WAIT), MigrationOptions.builder().build());
      assertThat(last.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(in2.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);

      // each handle keeps its own end
      assertThat(first.status()).isEqualTo(MigrationStatus.FAILED);
      assertThat(first.error()).contains(firstError);
      assertThat(throttled.status()).isEqualTo(MigrationStatus.CANCELLED);
      assertThat(throttled.error()).isEmpty();
      assertThat(throttled.statistics().transferredBytes()).isEqualTo(cancelledFigures.transferredBytes());
      assertThat(throttled.statistics().totalTimeMs()).isEqualTo(cancelledFigures.totalTimeMs());
      assertThat(last.statistics().transferredBytes()).isNotEqualTo(cancelledFigures.transferredBytes());
      assertThat(in.status()).isEqualTo(MigrationStatus.FAILED);
      assertThat(in.error()).isPresent();
      assertThat(in.statistics()).isEqualTo(inFigures);
      assertThat(in2.statistics().transferredBytes()).isGreaterThan(0);
      assertThat(src.digest().firstDifference(dst.digest())).isEmpty();
      assertConsistent(dst);
    }
  }

  @Test
  void refusesABuiltInOrBadName() {
    VcpuProgram stress = new VcpuProgram() {
      @Override
      public String name() {
        return "stress";
      }

      @Override
      public void step(Vcpu v) {}
    };
    assertThatThrownBy(() -> FerryMachine.builder().vcpuProgram(stress)).hasMessageContaining("built-in");
    VcpuProgram empty = new VcpuProgram() {
      @Override
      public String name() {
        return "";
      }

      @Override
      public void step(Vcpu v) {}
    };
    assertThatThrownBy(() -> FerryMachine.builder().vcpuProgram(empty)).hasMessageContaining("1..64 ASCII");
  }
}
