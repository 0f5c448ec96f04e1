package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.GuestMemory;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shape of issue 8's lost pages: a {@code stress} guest still in its first, slow pass (RAM
 * ahead of it never touched) migrated live over a real socket; the stopped source and the loaded
 * destination must have the same digest. Without the fix it failed about one run in four (2 of 8, 1 skipped as it left the first pass).
 */
@Timeout(120)
class FreshRamMigrationTest {
  @TempDir Path dir;

  @RepeatedTest(3)
  void stressGuestInItsFirstPassArrivesExactly() throws Exception {
    long memory = 128L << 20;
    ProgramOptions slow = ProgramOptions.defaults().withStressRateBytesPerSec(32L << 20).withPagesPerStep(64);
    try (MachineHost src =
            new MachineHost(
                Machine.builder().memory(memory).program("stress").programOptions(slow).serial(new ByteArrayOutputStream()).build());
        MachineHost dst =
            new MachineHost(Machine.builder().memory(memory).program("stress").programOptions(slow).build())) {
      src.machine().resume();
      long quarter = memory / 4096 / 4;
      awaitTrue(() -> src.machine().cpu(0).reg(1) >= quarter);
      String uri = "unix:" + dir.resolve("m.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      OutgoingMigration out = src.migration().migrate(uri);
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      incoming.await(60, TimeUnit.SECONDS);
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertSameState(src, dst);
      // the shape this test is about (a machine far slower than usual may finish the pass first)
      assumeThat(src.machine().cpu(0).reg(2)).as("still in the first pass").isZero();
    }
  }

  /**
   * The fresh-RAM shortcut (zero records skipped unread when the destination never ran) must not
   * trust a machine whose RAM guest code wrote without running it (through the Java API).
   */
  @Test
  void aLoadIntoRamThatGuestCodeWroteWithoutRunningClearsItsZeroPages() throws Exception {
    try (MachineHost src = new MachineHost(Machine.builder().memory(8L << 20).program("idle").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(8L << 20).program("idle").build())) {
      Path file = dir.resolve("idle.ferry");
      src.save(file);
      try (GuestMemory m = dst.machine().ram().openMemory()) {
        for (long page = 0; page < 2048; page += 7) {
          m.fillPage(0, page, (byte) 0x5a);
        }
      }
      assertThat(dst.machine().runState()).isEqualTo(RunState.PRELAUNCH);
      dst.load(file);
      assertSameState(src, dst);
    }
  }

  /**
   * The exact check every migration test ends with: the stopped source's digest (RAM and devices)
   * equals the destination's, taken after the load and before its guest runs (the destination is
   * left paused). A mismatch names the first differing block and page.
   */
  static void assertSameState(MachineHost src, MachineHost dst) {
    dst.startAfterLoad(true);
    MemoryDigest a = src.memoryDigest();
    MemoryDigest b = dst.memoryDigest();
    assertThat(a.firstDifference(b)).as("source vs destination").isEmpty();
    assertThat(a).isEqualTo(b);
  }

  static void awaitTrue(java.util.function.BooleanSupplier c) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out");
      }
      Thread.sleep(2);
    }
  }
}
