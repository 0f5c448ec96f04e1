package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 15 item 7: the {@code workingset} guest (fill all RAM once, then increment the first byte
 * of every working-set page in a loop) and its check.
 */
@Timeout(120)
class WorkingSetTest {
  private static final int PAGE = 4096;

  @TempDir Path dir;

  private static Machine machine(long memory, ProgramOptions o, ByteArrayOutputStream serial) {
    return Machine.builder().memory(memory).program("workingset").programOptions(o).serial(serial).build();
  }

  @Test
  void fillsEveryPageOnceThenCountsTheWorkingSetAndTheCheckNamesBadPages() throws Exception {
    ProgramOptions o = ProgramOptions.defaults().withPagesPerStep(64).withWorkingSet(1L << 20, 2L << 20);
    ByteArrayOutputStream serial = new ByteArrayOutputStream();
    try (Machine m = machine(8L << 20, o, serial)) {
      m.resume();
      FreshRamMigrationTest.awaitTrue(() -> m.cpu(0).reg(2) >= 3 && m.cpu(0).reg(1) > 10);
      m.pause();
      String out = serial.toString(StandardCharsets.US_ASCII);
      assertThat(out).startsWith("AB");
      assertThat(out.chars().filter(c -> c == 'B').count()).isEqualTo(m.cpu(0).reg(2));

      StressCheck.Result ok = StressCheck.check(m);
      assertThat(ok.passed()).as(ok.summary()).isTrue();
      long wsFirst = (2L << 20) / PAGE;
      MemorySegment ram = m.ram().block("ram").memory();
      // the working set's counters: passes, plus one before the incrementer
      long cursor = m.cpu(0).reg(1);
      if (cursor == 0) { // paused right after a pass: all equal
        assertThat(ok.edge()).isNull();
      } else {
        assertThat(ok.edge().pageOffset()).isEqualTo((wsFirst + cursor) * PAGE);
      }
      int passes = (int) m.cpu(0).reg(2);
      for (long p = 0; p < 256; p++) {
        int expected = (passes + (p < cursor ? 1 : 0)) & 0xff;
        assertThat(Byte.toUnsignedInt(ram.get(ValueLayout.JAVA_BYTE, (wsFirst + p) * PAGE))).as("page %d", wsFirst + p).isEqualTo(expected);
      }
      // outside the working set: exactly the fill qword, and nothing else in the page
      assertThat(ram.get(ValueLayout.JAVA_LONG_UNALIGNED, 5L * PAGE)).isEqualTo(GuestPrograms.workingSetFill(5)).isNotZero();
      assertThat(ram.get(ValueLayout.JAVA_LONG_UNALIGNED, 5L * PAGE + 8)).isZero();

      long fillAt = 7L * PAGE;
      long saved = ram.get(ValueLayout.JAVA_LONG_UNALIGNED, fillAt);
      ram.set(ValueLayout.JAVA_LONG_UNALIGNED, fillAt, saved ^ 0x100);
      StressCheck.Result badFill = StressCheck.check(m);
      assertThat(badFill.passed()).isFalse();
      assertThat(badFill.badPageCount()).isEqualTo(1);
      assertThat(badFill.summary()).contains("ram@0x7000").contains("fill qword");
      ram.set(ValueLayout.JAVA_LONG_UNALIGNED, fillAt, saved);

      long counterAt = (wsFirst + 200) * PAGE;
      byte c = ram.get(ValueLayout.JAVA_BYTE, counterAt);
      ram.set(ValueLayout.JAVA_BYTE, counterAt, (byte) (c + 2));
      StressCheck.Result badCounter = StressCheck.check(m);
      assertThat(badCounter.passed()).isFalse();
      assertThat(badCounter.summary()).contains("ram@0x" + Long.toHexString(counterAt)).contains("within one step");
      ram.set(ValueLayout.JAVA_BYTE, counterAt, c);
      assertThat(StressCheck.check(m).passed()).isTrue();
    }
  }

  @Test
  void aMachineStillFillingPassesAndAStrayWriteAfterTheFillFails() throws Exception {
    ProgramOptions o = ProgramOptions.defaults().withPagesPerStep(1).withWorkingSet(64L << 10, 0);
    try (Machine m = machine(8L << 20, o, new ByteArrayOutputStream())) {
      m.resume();
      FreshRamMigrationTest.awaitTrue(() -> m.cpu(0).reg(0) > 16);
      m.pause();
      if (m.cpu(0).pc() == 1) { // still filling (a slow machine may be done)
        assertThat(StressCheck.check(m).passed()).as(StressCheck.check(m).summary()).isTrue();
        MemorySegment ram = m.ram().block("ram").memory();
        ram.set(ValueLayout.JAVA_LONG_UNALIGNED, ram.byteSize() - PAGE, 1L);
        assertThat(StressCheck.check(m).summary()).contains("after the fill stopped");
      }
    }
  }

  @Test
  void workingSetSettingsTravelInCpuProgram() throws Exception {
    try (Machine m = machine(8L << 20, ProgramOptions.defaults(), new ByteArrayOutputStream())) {
      assertThat(CpuDevice.PROGRAM.isNeeded(m.cpu(0))).isFalse();
    }
    try (Machine m = machine(8L << 20, ProgramOptions.defaults().withWorkingSet(1L << 20, 0), new ByteArrayOutputStream())) {
      assertThat(CpuDevice.PROGRAM.isNeeded(m.cpu(0))).isTrue();
    }
  }

  /** cpu/program as builds before the working set wrote it (version 1, three settings). */
  private static final dev.ferry.vmstate.VMStateDescription<CpuDevice> OLD_PROGRAM =
      dev.ferry.vmstate.VMStateDescription.<CpuDevice>builder("cpu/program")
          .version(1)
          .needed(c -> true)
          .uint64("dirty_rate", c -> c.programOptions().dirtyRateBytesPerSec(), (c, v) -> {})
          .uint64("stress_rate", c -> c.programOptions().stressRateBytesPerSec(), (c, v) -> {})
          .uint64("seed", c -> c.programOptions().seed(), (c, v) -> {})
          .build();

  private static byte[] save(dev.ferry.vmstate.VMStateDescription<CpuDevice> d, CpuDevice cpu) throws Exception {
    dev.ferry.testing.MemoryChannel sink = dev.ferry.testing.MemoryChannel.sink();
    try (dev.ferry.stream.MigrationOutput out = new dev.ferry.stream.MigrationOutput(sink)) {
      dev.ferry.vmstate.codec.VMStateCodec.save(d, out, cpu);
    }
    return sink.written();
  }

  @Test
  void anOlderBuildsCpuProgramLoadsWithTheDefaultWorkingSetAndTheNewOneRoundTrips() throws Exception {
    ProgramOptions stress = ProgramOptions.defaults().withStressRateBytesPerSec(32L << 20);
    CpuDevice old = new CpuDevice(0, "stress");
    old.setProgramOptions(stress);
    var oldCpu = dev.ferry.vmstate.VMStateDescription.<CpuDevice>builder("cpu").version(1).minimumVersion(1)
        .uint64("pc", CpuDevice::pc, (c, v) -> {}).subsection(OLD_PROGRAM).build();
    CpuDevice loaded = new CpuDevice(0, "stress");
    var newCpu = dev.ferry.vmstate.VMStateDescription.<CpuDevice>builder("cpu").version(1).minimumVersion(1)
        .uint64("pc", CpuDevice::pc, (c, v) -> {}).subsection(CpuDevice.PROGRAM).build();
    dev.ferry.vmstate.codec.VMStateCodec.load(newCpu, dev.ferry.stream.MigrationInput.of(save(oldCpu, old)), loaded, 1);
    assertThat(loaded.loadedProgramOptions(ProgramOptions.defaults())).isEqualTo(stress);

    ProgramOptions ws = ProgramOptions.defaults().withWorkingSet(8L << 20, 1L << 20).withWorkingSetRateBytesPerSec(16L << 20);
    CpuDevice src = new CpuDevice(0, "workingset");
    src.setProgramOptions(ws);
    CpuDevice dst = new CpuDevice(0, "workingset");
    dev.ferry.vmstate.codec.VMStateCodec.load(newCpu, dev.ferry.stream.MigrationInput.of(save(newCpu, src)), dst, 1);
    assertThat(dst.loadedProgramOptions(ProgramOptions.defaults())).isEqualTo(ws);
  }

  @Test
  void aWorkingSetGuestMigratesExactlyOverAUnixSocket() throws Exception {
    long memory = 32L << 20;
    ProgramOptions src = ProgramOptions.defaults().withPagesPerStep(256).withWorkingSet(4L << 20, 8L << 20);
    try (MachineHost s = new MachineHost(machine(memory, src, new ByteArrayOutputStream()));
        MachineHost d = new MachineHost(Machine.builder().memory(memory).program("stress").build())) {
      s.machine().resume();
      FreshRamMigrationTest.awaitTrue(() -> s.machine().cpu(0).reg(2) >= 2);
      String uri = "unix:" + dir.resolve("ws.sock");
      Incoming incoming = Incoming.listen(d, uri);
      OutgoingMigration out = s.migration().migrate(uri);
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      incoming.await(60, TimeUnit.SECONDS);
      assertThat(end).as(String.valueOf(s.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      FreshRamMigrationTest.assertSameState(s, d);
      ExactState.assertSame(s, d);
      Machine dm = d.machine();
      assertThat(dm.program().name()).isEqualTo("workingset");
      assertThat(dm.programOptions().workingSetBytes()).isEqualTo(4L << 20);
      assertThat(dm.programOptions().workingSetBaseBytes()).isEqualTo(8L << 20);
      StressCheck.Result r = StressCheck.check(dm);
      assertThat(r.passed()).as(r.summary()).isTrue();
      assertThat(StressCheck.check(s.machine()).passed()).isTrue();
    }
  }
}
