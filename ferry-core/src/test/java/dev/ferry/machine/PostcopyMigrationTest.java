package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.migration.PostcopyIncoming;
import dev.ferry.ram.RamBlock;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Postcopy end to end between two machines in this process over real sockets: the source switches
 * at once (most pages never went in precopy), the destination either holds its vCPUs until the
 * last page arrived (then its RAM and CPU state must equal the stopped source's exactly) or runs
 * them at RUN (then they fault pages in, and the stress pattern must hold afterwards).
 */
@Timeout(120)
class PostcopyMigrationTest {
  @TempDir Path dir;

  static MachineHost host(String program, Machine.Builder b) {
    return new MachineHost(b.program(program).serial(new ByteArrayOutputStream()).build());
  }

  static Machine.Builder mem(long bytes) {
    return Machine.builder().memory(bytes);
  }

  /** Runs one postcopy migration; returns the destination's postcopy side. */
  static PostcopyIncoming migrate(MachineHost src, MachineHost dst, String uri, List<String> dstEvents)
      throws Exception {
    src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
    dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
    // slow precopy, tiny downtime: the switch comes before most pages went
    src.migration().setParameters(Map.of("max-bandwidth", 4L << 20, "downtime-limit", 1L));
    dst.migration().addListener(
        new MigrationListener() {
          @Override
          public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
            dstEvents.add(to.qapiName());
          }
        });
    Incoming incoming = Incoming.listen(dst, uri);
    OutgoingMigration out = src.migration().migrate(incoming.uri());
    src.migration().startPostcopy();
    MigrationStatus end = out.await(60, TimeUnit.SECONDS);
    assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
    assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
    assertThat(out.guestMovedAway()).isTrue();
    assertThat(src.machine().runState()).isEqualTo(RunState.POSTMIGRATE);
    MigrationStats.Snapshot s = out.info();
    assertThat(s.postcopyBytes()).isGreaterThan(0);
    assertThat(dstEvents).containsSubsequence("setup", "active", "postcopy-active", "completed");
    return dst.migration().incoming().postcopy();
  }

  static void assertSameRamAndCpus(MachineHost src, MachineHost dst) {
    // the exact oracle: RAM and device state digests of the stopped source and the destination
    assertThat(src.memoryDigest().firstDifference(dst.memoryDigest())).isEmpty();
    for (int i = 0; i < src.machine().ramBlocks().size(); i++) {
      RamBlock a = src.machine().ramBlocks().get(i);
      RamBlock b = dst.machine().ramBlocks().get(i);
      long at = a.memory().mismatch(b.memory());
      assertThat(at).as("first differing byte of block '%s'", a.name()).isEqualTo(-1);
    }
    for (int c = 0; c < src.machine().cpus().size(); c++) {
      for (int r = 0; r < CpuDevice.REGISTER_COUNT; r++) {
        assertThat(dst.machine().cpu(c).reg(r)).as("cpu %d reg %d", c, r).isEqualTo(src.machine().cpu(c).reg(r));
      }
    }
  }

  @Test
  void heldDestinationEqualsTheStoppedSourceOverUnix() throws Exception {
    try (MachineHost src = host("stress", mem(32 << 20));
        MachineHost dst = host("stress", mem(32 << 20))) {
      src.machine().resume();
      dst.setPostcopyAutostart(() -> false); // vCPUs held after RUN until the last page arrived
      List<String> events = new CopyOnWriteArrayList<>();
      PostcopyIncoming pc = migrate(src, dst, "unix:" + dir.resolve("pc.sock"), events);
      assertThat(dst.machine().isRunning()).isFalse();
      assertThat(pc.faults()).isZero();
      assertThat(pc.missingPages()).isZero();
      assertSameRamAndCpus(src, dst);
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
    }
  }

  @Test
  void heldDestinationWithTwoMegabytePagesEqualsTheSourceOverTcp() throws Exception {
    Machine.Builder a = Machine.builder().ramBlock("ram", 16 << 20).ramBlock("huge", 16 << 20, 2 << 20);
    Machine.Builder b = Machine.builder().ramBlock("ram", 16 << 20).ramBlock("huge", 16 << 20, 2 << 20);
    try (MachineHost src = host("stress", a);
        MachineHost dst = host("stress", b)) {
      src.machine().resume();
      dst.setPostcopyAutostart(() -> false);
      migrate(src, dst, "tcp:127.0.0.1:0", new CopyOnWriteArrayList<>());
      assertSameRamAndCpus(src, dst);
    }
  }

  /**
   * Attacks POSTCOPY_ADVISE leaving destination RAM in place (no discard of all RAM): a destination
   * whose RAM is full of its own earlier run's data, and a preallocated one, must still end equal to
   * the source, whose many never-written pages travel as zero records in precopy and in postcopy.
   */
  @Test
  void aUsedOrPreallocatedDestinationEndsEqualToTheSourceAlthoughAdviseKeepsItsRam() throws Exception {
    for (boolean used : new boolean[] {true, false}) {
      try (MachineHost src = host("random", mem(32 << 20));
          MachineHost dst = host("random", mem(32 << 20).memPrealloc(!used))) {
        if (used) {
          dst.machine().resume();
          Thread.sleep(300); // the destination's own guest writes random pages
          dst.machine().pause();
        }
        src.machine().resume();
        Thread.sleep(100);
        dst.setPostcopyAutostart(() -> false);
        PostcopyIncoming pc = migrate(src, dst, "unix:" + dir.resolve("used-" + used + ".sock"), new CopyOnWriteArrayList<>());
        assertThat(pc.missingPages()).isZero();
        assertSameRamAndCpus(src, dst);
      }
    }
  }

  @Test
  void runningDestinationFaultsPagesInAndKeepsTheStressPatternOverTcp() throws Exception {
    Machine.Builder a = Machine.builder().ramBlock("ram", 16 << 20).ramBlock("huge", 16 << 20, 2 << 20);
    Machine.Builder b = Machine.builder().ramBlock("ram", 16 << 20).ramBlock("huge", 16 << 20, 2 << 20);
    try (MachineHost src = host("stress", a);
        MachineHost dst = host("stress", b)) {
      src.machine().resume();
      Thread.sleep(300); // the source's guest writes pages first (untouched ones travel as tiny zero records)
      // background pages at 8 MiB/s: the 32 MiB take seconds, so the running destination's guest
      // surely touches a page before it arrived (uncapped, a fast link may deliver them all first)
      src.migration().setParameters(Map.of("max-postcopy-bandwidth", 8L << 20));
      PostcopyIncoming pc = migrate(src, dst, "tcp:127.0.0.1:0", new CopyOnWriteArrayList<>());
      assertThat(dst.machine().isRunning()).isTrue();
      assertThat(pc.faults()).isGreaterThan(0);
      assertThat(pc.requestsSent()).isGreaterThan(0);
      // the source counts what it read before SHUT; a vCPU that faulted on the last pages may write
      // its request just after the loader's SHUT (harmless: the page arrives anyway), one per vCPU
      assertThat(src.migration().outgoing().info().postcopyRequests())
          .isLessThanOrEqualTo(pc.requestsSent())
          .isGreaterThanOrEqualTo(pc.requestsSent() - dst.machine().cpus().size());
      assertThat(pc.faultLatencyNs().getTotalCount()).isEqualTo(pc.faults());
      dst.machine().pause();
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
    }
  }

  @Test
  void cancelBeforeTheSwitchLeavesTheSourceRunning() throws Exception {
    try (MachineHost src = host("stress", mem(32 << 20));
        MachineHost dst = host("stress", mem(32 << 20))) {
      src.machine().resume();
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      src.migration().setParameters(Map.of("max-bandwidth", 1L << 20));
      String uri = "unix:" + dir.resolve("cancel.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      OutgoingMigration out = src.migration().migrate(uri);
      await(() -> out.state().status() == MigrationStatus.ACTIVE);
      src.migration().cancel();
      assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.CANCELLED);
      assertThat(src.machine().isRunning()).isTrue();
      assertThat(out.guestMovedAway()).isFalse();
      assertThat(incoming.failure(30, TimeUnit.SECONDS)).isNotNull();
      assertThat(dst.machine().isRunning()).isFalse();
    }
  }

  static void await(java.util.function.BooleanSupplier c) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not reached in 30 s");
      }
      Thread.sleep(5);
    }
  }
}
