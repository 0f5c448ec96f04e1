package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(120)
class MachineHostTest {
  @TempDir Path dir;

  static MachineHost host(String program, long memory, ByteArrayOutputStream serial) {
    return new MachineHost(Machine.builder().memory(memory).program(program).serial(serial).build());
  }

  static void runFor(Machine m, long ms) throws InterruptedException {
    m.resume();
    Thread.sleep(ms);
  }

  @Test
  void snapshotRoundTripContinuesTheStressPattern() throws Exception {
    ByteArrayOutputStream serial = new ByteArrayOutputStream();
    try (MachineHost src = host("stress", 16 << 20, serial)) {
      runFor(src.machine(), 200);
      Path file = dir.resolve("snap.ferry");
      src.save(file);
      assertThat(src.machine().isRunning()).isTrue();
      src.machine().pause();
      long passes = src.machine().cpu(0).reg(2);

      ByteArrayOutputStream serial2 = new ByteArrayOutputStream();
      try (MachineHost dst = host("stress", 16 << 20, serial2)) {
        dst.load(file);
        assertThat(dst.loadedRunState()).isEqualTo(RunState.RUNNING);
        assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
        assertThat(dst.machine().cpu(0).reg(2)).isLessThanOrEqualTo(passes);
        dst.startAfterLoad(false);
        Thread.sleep(200);
        dst.machine().pause();
        assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
        assertThat(serial2.toString()).contains("B");
      }
    }
  }

  @Test
  void snapshotOfADifferentMachineIsRefusedNamingTheBlock() throws Exception {
    try (MachineHost src = host("idle", 16 << 20, new ByteArrayOutputStream())) {
      Path file = dir.resolve("snap.ferry");
      src.save(file);
      try (MachineHost dst = host("idle", 32 << 20, new ByteArrayOutputStream())) {
        assertThatThrownBy(() -> dst.load(file)).hasMessageContaining("ram");
      }
    }
  }

  @Test
  void liveMigrationOverUnixSocketKeepsTheGuestIntact() throws Exception {
    ByteArrayOutputStream serial = new ByteArrayOutputStream();
    try (MachineHost src = host("stress", 32 << 20, serial);
        MachineHost dst = host("stress", 32 << 20, new ByteArrayOutputStream())) {
      runFor(src.machine(), 100);
      String uri = "unix:" + dir.resolve("mig.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      src.migration().setCapabilities(Map.of(dev.ferry.migration.MigrationCapability.RETURN_PATH, true));
      OutgoingMigration out = src.migration().migrate(uri);
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.machine().runState()).isEqualTo(RunState.POSTMIGRATE);
      MigrationStats.Snapshot s = out.info();
      assertThat(s.normalPages() + s.duplicatePages()).isGreaterThanOrEqualTo((32 << 20) / 4096);
      ExactState.assertSame(src, dst);
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
      dst.startAfterLoad(false);
      assertThat(dst.machine().isRunning()).isTrue();
    }
  }

  @Test
  void xbzrleMigrationSendsDeltasAndKeepsTheGuestIntact() throws Exception {
    // 8 MiB stress guest, 4 MiB cache: half the pages are cached, the rest age out (QEMU's rule)
    try (MachineHost src = host("stress", 8 << 20, new ByteArrayOutputStream());
        MachineHost dst = host("stress", 8 << 20, new ByteArrayOutputStream())) {
      src.machine().resume();
      await(() -> src.machine().cpu(0).reg(2) >= 1);
      String uri = "unix:" + dir.resolve("x.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      src.migration().setCapabilities(Map.of(dev.ferry.migration.MigrationCapability.XBZRLE, true));
      // At 32 MiB/s and a 1 ms downtime limit the threshold is 32 KiB (8 pages), which the unpaced
      // stress guest always out-dirties, so the migration keeps re-sending dirty pages; only once
      // XBZRLE deltas were seen are the limits lifted to let it end. (Without the bandwidth cap an idle
      // fast machine measured so high a rate that even 1 ms let it complete before any delta.)
      src.migration().setParameters(Map.of("xbzrle-cache-size", 4L << 20, "downtime-limit", 1L, "max-bandwidth", 32L << 20));
      OutgoingMigration out = src.migration().migrate(uri);
      await(() -> out.info().xbzrlePages() > 0 || out.state().status().isFinal());
      assertThat(out.state().status()).as("still migrating when the first deltas went out").isEqualTo(MigrationStatus.ACTIVE);
      src.migration().setParameters(Map.of("downtime-limit", 60_000L, "max-bandwidth", 0L));
      assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
      incoming.await(60, TimeUnit.SECONDS);
      MigrationStats.Snapshot s = out.info();
      assertThat(s.xbzrlePages()).as("xbzrle pages").isPositive();
      ExactState.assertSame(src, dst);
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
    }
  }

  private static void await(java.util.function.BooleanSupplier c) throws InterruptedException {
    long end = System.nanoTime() + 30_000_000_000L;
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out");
      }
      Thread.sleep(5);
    }
  }

  @Test
  void failedMigrationLeavesTheSourceRunning() throws Exception {
    try (MachineHost src = host("random", 16 << 20, new ByteArrayOutputStream())) {
      runFor(src.machine(), 50);
      Files.createDirectories(dir.resolve("x"));
      OutgoingMigration out = src.migration().migrate("unix:" + dir.resolve("x/nobody.sock"));
      assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc()).contains("nobody.sock");
      assertThat(src.machine().isRunning()).isTrue();
    }
  }
}
