package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.DirtyBitmap;
import dev.ferry.ram.RamBlock;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MachineTest {
  private static final int PAGE = 4096;

  static void await(BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L; // a generous bound against hangs, not a timing assertion
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not reached");
      }
      Thread.sleep(1);
    }
  }

  private static Machine stressMachine(ByteArrayOutputStream serial) {
    return Machine.builder()
        .ramBlock("ram", 4L << 20)
        .ramBlock("vga", 256L << 10)
        .program("stress")
        .programOptions(ProgramOptions.defaults().withPagesPerStep(100)) // steps end mid-pass
        .serial(serial)
        .build();
  }

  /** RAM + cpu + device state that must not change while paused and must be consistent at a step boundary. */
  private record Snapshot(byte[][] ram, long[] regs, long pc, long steps, long serialTotal, long clockNs) {
    static Snapshot of(Machine m) {
      byte[][] ram = new byte[m.ramBlocks().size()][];
      for (int i = 0; i < ram.length; i++) {
        ram[i] = m.ramBlocks().get(i).memory().toArray(ValueLayout.JAVA_BYTE);
      }
      CpuDevice cpu = m.cpu(0);
      return new Snapshot(ram, cpu.regs().clone(), cpu.pc(), cpu.steps(), m.serial().totalBytes(), m.timer().nowNs());
    }

    boolean sameAs(Snapshot o) {
      return Arrays.deepEquals(ram, o.ram)
          && Arrays.equals(regs, o.regs)
          && pc == o.pc
          && steps == o.steps
          && serialTotal == o.serialTotal
          && clockNs == o.clockNs;
    }
  }

  @Test
  void pauseStopsAtAStepBoundaryAndResumeContinuesThere() throws Exception {
    ByteArrayOutputStream serial = new ByteArrayOutputStream();
    try (Machine m = stressMachine(serial)) {
      assertThat(m.runState()).isEqualTo(RunState.PRELAUNCH);
      m.resume();
      for (int round = 0; round < 5; round++) {
        long before = m.cpu(0).steps();
        await(() -> m.cpu(0).steps() > before + 50);
        m.pause();
        assertThat(m.runState()).isEqualTo(RunState.PAUSED);
        Snapshot a = Snapshot.of(m);
        assertConsistentStressState(m);
        Thread.sleep(20);
        Snapshot b = Snapshot.of(m);
        assertThat(b.sameAs(a)).as("nothing moves while paused (round %d)", round).isTrue();
        m.resume();
      }
      await(() -> m.cpu(0).reg(2) >= 2);
      m.pause();
      assertConsistentStressState(m);
      String out = serial.toString(StandardCharsets.US_ASCII);
      assertThat(out).startsWith("A");
      assertThat(out.chars().filter(c -> c == 'B').count()).isEqualTo(m.cpu(0).reg(2));
      assertThat(m.serial().totalBytes()).isEqualTo(1 + m.cpu(0).reg(2));
    }
  }

  /** The stress registers say exactly where the incrementer is; RAM must agree page by page. */
  private static void assertConsistentStressState(Machine m) {
    CpuDevice cpu = m.cpu(0);
    // the registers say where the incrementer is: r0 block, r1 page in it, r2 passes
    long cursor = cpu.reg(1);
    for (int b = 0; b < cpu.reg(0); b++) {
      cursor += m.ramBlocks().get(b).targetPageCount();
    }
    int passes = (int) cpu.reg(2);
    long global = 0;
    for (RamBlock b : m.ramBlocks()) {
      for (long p = 0; p < b.targetPageCount(); p++, global++) {
        int expected = (passes + (global < cursor ? 1 : 0)) & 0xff;
        int actual = Byte.toUnsignedInt(b.memory().get(ValueLayout.JAVA_BYTE, p * PAGE));
        if (actual != expected) {
          throw new AssertionError("page " + global + " = " + actual + ", expected " + expected + " (cursor " + cursor + ")");
        }
      }
    }
    StressCheck.Result r = StressCheck.check(m);
    assertThat(r.passed()).as(r.summary()).isTrue();
    assertThat(r.pagesChecked()).isEqualTo(m.ramBlocks().stream().mapToLong(RamBlock::targetPageCount).sum());
  }

  @Test
  void stressCheckPassesOnARunningThenPausedMachineAndNamesTamperedPages() throws Exception {
    try (Machine m = stressMachine(new ByteArrayOutputStream())) {
      m.resume();
      await(() -> m.cpu(0).reg(2) >= 1 && m.cpu(0).reg(1) > 10 && m.cpu(0).reg(0) == 0);
      m.pause();
      StressCheck.Result ok = StressCheck.check(m);
      assertThat(ok.passed()).as(ok.summary()).isTrue();
      assertThat(ok.edge()).isNotNull();
      assertThat(ok.edge().block()).isEqualTo("ram");
      assertThat(ok.edge().pageOffset()).isEqualTo(m.cpu(0).reg(1) * PAGE);

      MemorySegment vga = m.ram().block("vga").memory();
      vga.set(ValueLayout.JAVA_BYTE, 5 * PAGE, (byte) (vga.get(ValueLayout.JAVA_BYTE, 5 * PAGE) + 7));
      StressCheck.Result bad = StressCheck.check(m);
      assertThat(bad.passed()).isFalse();
      assertThat(bad.badPageCount()).isEqualTo(2); // the tampered page and the one after it
      assertThat(bad.firstBadPages()).extracting(StressCheck.BadPage::block, StressCheck.BadPage::pageOffset)
          .containsExactly(
              org.assertj.core.groups.Tuple.tuple("vga", 5L * PAGE), org.assertj.core.groups.Tuple.tuple("vga", 6L * PAGE));
      assertThat(bad.summary()).contains("vga@0x5000");
      assertThatThrownBy(() -> {
            m.resume();
            StressCheck.check(m);
          })
          .isInstanceOf(IllegalStateException.class);
    }
  }

  @Test
  void stressCheckCountsEveryBreakAndAllowsOneEdge() {
    try (RamBlock b = RamBlock.allocate("ram", 64 * PAGE)) {
      MemorySegment s = b.memory();
      for (int p = 0; p < 64; p++) {
        s.set(ValueLayout.JAVA_BYTE, (long) p * PAGE, (byte) (p < 20 ? 0 : 255)); // wrap: 0 then 255 is one edge
      }
      assertThat(StressCheck.check(List.of(b)).passed()).isTrue();
      s.set(ValueLayout.JAVA_BYTE, 40L * PAGE, (byte) 254); // a second drop by one is bad
      StressCheck.Result r = StressCheck.check(List.of(b));
      assertThat(r.badPageCount()).isEqualTo(2);
      assertThat(r.firstBadPages().getFirst().pageOffset()).isEqualTo(40L * PAGE);
    }
  }

  @Test
  void runStateListenersSeeEveryTransition() throws Exception {
    List<String> seen = new ArrayList<>();
    try (Machine m = Machine.builder().memory(1L << 20).program("idle").build()) {
      m.addRunStateListener((from, to) -> seen.add(from + "->" + to));
      m.resume();
      m.pause();
      m.resume();
      m.stop(RunState.FINISH_MIGRATE);
      m.stop(RunState.POSTMIGRATE);
      assertThat(m.isRunning()).isFalse();
      assertThatThrownBy(() -> m.stop(RunState.RUNNING)).isInstanceOf(IllegalArgumentException.class);
    }
    assertThat(seen)
        .containsExactly(
            "prelaunch->running",
            "running->paused",
            "paused->running",
            "running->finish-migrate",
            "finish-migrate->postmigrate",
            "postmigrate->shutdown");
  }

  @Test
  void dirtyLogSeesGuestWritesOnlyWhileOn() throws Exception {
    try (Machine m =
        Machine.builder()
            .memory(8L << 20)
            .program("random")
            .programOptions(ProgramOptions.defaults().withDirtyRateBytesPerSec(256L << 20).withPagesPerStep(64))
            .build()) {
      List<DirtyBitmap> bitmaps = m.dirtyLog().newBitmaps();
      m.resume();
      await(() -> m.cpu(0).reg(2) > 100);
      m.pause();
      assertThat(m.dirtyLog().harvestInto(bitmaps)).as("log was off").isZero();

      m.dirtyLog().start();
      long written = m.cpu(0).reg(2);
      m.resume();
      await(() -> m.cpu(0).reg(2) > written + 200);
      m.pause();
      long pages = m.dirtyLog().harvestInto(bitmaps);
      assertThat(pages).isPositive().isLessThanOrEqualTo(m.cpu(0).reg(2) - written);
      m.dirtyLog().stop();
    }
  }

  @Test
  void fillWritesEveryPageThenIdles() throws Exception {
    try (Machine m =
        Machine.builder().ramBlock("a", 1L << 20).ramBlock("b", 512L << 10).program("fill").build()) {
      m.resume();
      await(() -> m.cpu(0).pc() == 2);
      m.pause();
      for (RamBlock b : m.ramBlocks()) {
        for (long p = 0; p < b.targetPageCount(); p++) {
          assertThat(b.memory().get(ValueLayout.JAVA_LONG, p * PAGE + 8)).as("%s page %d", b.name(), p).isNotZero();
        }
      }
      m.dirtyLog().start();
      m.resume();
      long steps = m.cpu(0).steps();
      await(() -> m.cpu(0).steps() > steps + 2);
      m.pause();
      List<DirtyBitmap> bitmaps = m.dirtyLog().newBitmaps();
      assertThat(m.dirtyLog().harvestInto(bitmaps)).as("fill is done and idles").isZero();
    }
  }

  @Test
  void unknownProgramAndBadBlocksAreRejected(@TempDir Path dir) {
    assertThatThrownBy(() -> GuestPrograms.byName("nope")).hasMessageContaining("unknown program 'nope'");
    assertThatThrownBy(() -> Machine.builder().ramBlock("x", 4096).ramBlock("x", 4096).build())
        .hasMessageContaining("unique");
    try (Machine m = Machine.builder().memory(1L << 20).disk(dir.resolve("disk.img"), 1L << 20).build()) {
      assertThat(m.disk().sectorCount()).isEqualTo(2048);
      assertThat(m.devices()).extracting(Device::idstr).containsExactly("cpu", "serial", "timer", "disk");
    }
    assertThatThrownBy(() -> Machine.builder().memory(1L << 20).disk(dir.resolve("disk.img"), 2L << 20).build())
        .hasMessageContaining("expected");
  }

  @Test
  void timerIsContinuousAcrossSaveAndRestore() throws Exception {
    TimerDevice source = new TimerDevice();
    source.resume();
    long t0 = source.nowNs();
    await(() -> source.nowNs() > t0);
    source.pause();
    long stoppedAt = source.nowNs();
    Thread.sleep(5);
    assertThat(source.nowNs()).as("stands still while paused").isEqualTo(stoppedAt);

    source.preSave();
    TimerDevice restored = new TimerDevice(); // a fresh instance, as in another process
    restored.setSavedClockNs(source.savedClockNs());
    restored.postLoad();
    assertThat(restored.nowNs()).isEqualTo(stoppedAt);
    restored.resume();
    assertThat(restored.nowNs()).isGreaterThanOrEqualTo(stoppedAt);
    restored.pause();

    // saving while running stores the time of preSave; loading into a running clock continues from it
    TimerDevice running = new TimerDevice();
    running.setSavedClockNs(1_000_000_000_000L);
    running.resume();
    running.postLoad();
    assertThat(running.nowNs()).isGreaterThanOrEqualTo(1_000_000_000_000L);
  }
}
