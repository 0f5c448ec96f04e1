package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.QemuJsonWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Device state through the VMState descriptions, plus a RAM copy: a paused machine's state loaded
 * into a fresh machine runs on exactly where the first one stopped.
 */
class MachineStateTest {

  private static Machine.Builder stress(ByteArrayOutputStream serial, Path disk) {
    return Machine.builder()
        .ramBlock("ram", 2L << 20)
        .ramBlock("vga", 128L << 10)
        .program("stress")
        .programOptions(ProgramOptions.defaults().withPagesPerStep(100))
        .serial(serial)
        .disk(disk, 1L << 20);
  }

  private static List<byte[]> saveDevices(Machine m) throws IOException {
    List<byte[]> out = new ArrayList<>();
    for (SaveStateEntry e : m.stateEntries()) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (MigrationOutput o = new MigrationOutput(Channels.newChannel(bytes))) {
        o.writeBe32(e.saveVersion()); // the version a section header would carry
        QemuJsonWriter desc = new QemuJsonWriter();
        desc.beginObject();
        e.save(o, desc);
        desc.endObject();
      }
      out.add(bytes.toByteArray());
    }
    return out;
  }

  private static void loadDevices(Machine m, List<byte[]> state) throws IOException {
    List<SaveStateEntry> entries = m.stateEntries();
    assertThat(entries).hasSameSizeAs(state);
    for (int i = 0; i < entries.size(); i++) {
      MigrationInput in = MigrationInput.of(state.get(i));
      entries.get(i).load(in, in.readBe32());
      assertThat(in.atEnd()).as("all of %s consumed", entries.get(i).idstr()).isTrue();
    }
  }

  @Test
  void pausedMachineContinuesInAFreshOneFromItsState(@TempDir Path dir) throws Exception {
    ByteArrayOutputStream serialA = new ByteArrayOutputStream();
    List<byte[]> devices;
    List<byte[]> ram = new ArrayList<>();
    long steps;
    long passes;
    long clockNs;
    try (Machine a = stress(serialA, dir.resolve("a.img")).build()) {
      a.resume();
      MachineTest.await(() -> a.cpu(0).reg(2) >= 3);
      a.pause();
      devices = saveDevices(a);
      for (RamBlock b : a.ramBlocks()) {
        ram.add(b.memory().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
      }
      steps = a.cpu(0).steps();
      passes = a.cpu(0).reg(2);
      clockNs = a.timer().nowNs();
      assertThat(StressCheck.check(a).passed()).isTrue();
    }

    ByteArrayOutputStream serialB = new ByteArrayOutputStream();
    try (Machine b = stress(serialB, dir.resolve("b.img")).build()) {
      b.stop(RunState.INMIGRATE);
      for (int i = 0; i < ram.size(); i++) {
        MemorySegment.copy(MemorySegment.ofArray(ram.get(i)), 0, b.ramBlocks().get(i).memory(), 0, ram.get(i).length);
      }
      loadDevices(b, devices);
      assertThat(b.cpu(0).steps()).isEqualTo(steps);
      assertThat(b.cpu(0).programName()).isEqualTo("stress");
      assertThat(b.timer().nowNs()).as("clock continues from the saved time").isEqualTo(clockNs);
      assertThat(b.serial().totalBytes()).isEqualTo(1 + passes);
      assertThat(b.disk().statePath()).endsWith("a.img");
      assertThat(StressCheck.check(b).passed()).isTrue();

      b.resume();
      MachineTest.await(() -> b.cpu(0).reg(2) >= passes + 2);
      b.pause();
      StressCheck.Result r = StressCheck.check(b);
      assertThat(r.passed()).as(r.summary()).isTrue();
      assertThat(b.timer().nowNs()).isGreaterThan(clockNs);
      // the destination's serial shows only the passes it ran itself: no second "A"
      String out = serialB.toString(StandardCharsets.US_ASCII);
      assertThat(out).doesNotContain("A").contains("B");
      assertThat(b.serial().totalBytes()).isEqualTo(1 + b.cpu(0).reg(2));
    }
  }

  @Test
  void aDiskOfAnotherSizeFailsTheLoadNamingTheField(@TempDir Path dir) throws Exception {
    List<byte[]> state;
    try (Machine a = stress(new ByteArrayOutputStream(), dir.resolve("a.img")).build()) {
      state = saveDevices(a);
    }
    try (Machine b =
        Machine.builder().memory(1L << 20).disk(dir.resolve("b.img"), 2L << 20).build()) {
      SaveStateEntry disk = b.disk().stateEntry();
      byte[] diskState = state.get(3);
      assertThatThrownBy(() -> disk.load(MigrationInput.of(diskState), 1))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("size_bytes")
          .hasMessageContaining("disk");
    }
  }

  @Test
  void cpuStateCarriesRegistersAndProgramName() throws Exception {
    CpuDevice cpu = new CpuDevice(3, "random");
    for (int i = 0; i < CpuDevice.REGISTER_COUNT; i++) {
      cpu.setReg(i, -1L - i * 0x0101010101010101L);
    }
    cpu.setPc(7);
    cpu.setSteps(Long.MAX_VALUE);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (MigrationOutput o = new MigrationOutput(Channels.newChannel(bytes))) {
      cpu.stateEntry().save(o, null);
    }
    CpuDevice copy = new CpuDevice(3, "idle");
    copy.stateEntry().load(MigrationInput.of(bytes.toByteArray()), 1);
    assertThat(copy.regs()).containsExactly(cpu.regs());
    assertThat(copy.pc()).isEqualTo(7);
    assertThat(copy.steps()).isEqualTo(Long.MAX_VALUE);
    assertThat(copy.programName()).isEqualTo("random");
    assertThat(bytes.size()).isEqualTo(16 * 8 + 8 + 8 + 1 + "random".length());
  }
}
