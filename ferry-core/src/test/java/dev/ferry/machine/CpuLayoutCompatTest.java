package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.VersionMismatchException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 3 item 6: the cpu device's two layouts. Committed v1 snapshots (golden, never regenerated)
 * load into v2; v2 snapshots load into a v1 build while neither v2 addition is in use, and fail
 * naming the subsection or the versions when one is.
 */
@Timeout(60)
class CpuLayoutCompatTest {
  @TempDir Path dir;

  private Path golden(String name) throws IOException {
    Path p = dir.resolve(name);
    try (InputStream in = CpuLayoutCompatTest.class.getResourceAsStream("/golden/" + name)) {
      assertThat(in).as(name).isNotNull();
      Files.copy(in, p);
    }
    return p;
  }

  private static MachineHost host(String program, CpuDevice.Layout layout) {
    return new MachineHost(GoldenCpuV1Generator.machine(program, layout).build());
  }

  private static MachineHost host(String program, CpuDevice.Layout layout, ByteArrayOutputStream serial) {
    return new MachineHost(GoldenCpuV1Generator.machine(program, layout).serial(serial).build());
  }

  @Test
  void v1GoldenRegistersLoadIntoV2() throws Exception {
    Path file = golden("cpu-v1-registers.ferry");
    try (MachineHost h = host("idle", CpuDevice.Layout.V2)) {
      CpuDevice cpu = h.machine().cpu(0);
      cpu.setFlags(0x55);
      cpu.setXreg(3, 9); // preLoad resets what the v1 stream does not carry
      h.load(file);
      for (int i = 0; i < CpuDevice.REGISTER_COUNT; i++) {
        assertThat(cpu.reg(i)).as("reg %d", i).isEqualTo(GoldenCpuV1Generator.goldenReg(i));
      }
      assertThat(cpu.pc()).isEqualTo(0x1234);
      assertThat(cpu.steps()).isEqualTo(777);
      assertThat(cpu.programName()).isEqualTo("idle");
      assertThat(cpu.flags()).isZero();
      for (int i = 0; i < CpuDevice.XREG_COUNT; i++) {
        assertThat(cpu.xreg(i)).isZero();
      }
      assertThat(h.loadedRunState()).isEqualTo(RunState.PAUSED);
    }
  }

  @Test
  void v1GoldenStressLoadsIntoV2AndTheGuestRunsOn() throws Exception {
    Path file = golden("cpu-v1-stress.ferry");
    ByteArrayOutputStream serial = new ByteArrayOutputStream();
    try (MachineHost h = host("stress", CpuDevice.Layout.V2, serial)) {
      h.load(file);
      assertThat(h.loadedRunState()).isEqualTo(RunState.RUNNING);
      assertThat(StressCheck.check(h.machine()).passed()).isTrue();
      long passes = h.machine().cpu(0).reg(2);
      h.startAfterLoad(false);
      long deadline = System.nanoTime() + 20_000_000_000L;
      while (h.machine().cpu(0).reg(2) < passes + 2 && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      h.machine().pause();
      assertThat(h.machine().cpu(0).reg(2)).isGreaterThanOrEqualTo(passes + 2);
      assertThat(StressCheck.check(h.machine()).passed()).isTrue();
      assertThat(serial.toString()).contains("B");
      // and it saves at v2 and loads back
      Path again = dir.resolve("again.ferry");
      h.save(again);
      try (MachineHost h2 = host("stress", CpuDevice.Layout.V2)) {
        h2.load(again);
        assertThat(StressCheck.check(h2.machine()).passed()).isTrue();
      }
    }
  }

  @Test
  void v1GoldenLoadsIntoV1() throws Exception {
    try (MachineHost h = host("idle", CpuDevice.Layout.V1)) {
      h.load(golden("cpu-v1-registers.ferry"));
      assertThat(h.machine().cpu(0).reg(5)).isEqualTo(GoldenCpuV1Generator.goldenReg(5));
    }
  }

  private Path v2Snapshot(int flags, long xreg7) throws IOException {
    Path file = dir.resolve("v2-" + flags + "-" + xreg7 + ".ferry");
    try (MachineHost h = host("idle", CpuDevice.Layout.V2)) {
      CpuDevice cpu = h.machine().cpu(0);
      cpu.setReg(4, 44);
      cpu.setPc(99);
      cpu.setFlags(flags);
      cpu.setXreg(7, xreg7);
      h.save(file);
    }
    return file;
  }

  @Test
  void v2SnapshotWithoutV2StateLoadsIntoV1() throws Exception {
    Path file = v2Snapshot(0, 0);
    try (MachineHost h = host("idle", CpuDevice.Layout.V1)) {
      h.load(file);
      assertThat(h.machine().cpu(0).reg(4)).isEqualTo(44);
      assertThat(h.machine().cpu(0).pc()).isEqualTo(99);
    }
  }

  @Test
  void v2SnapshotNeedingTheSubsectionFailsInV1NamingIt() throws Exception {
    Path file = v2Snapshot(0, 0x77);
    try (MachineHost h = host("idle", CpuDevice.Layout.V1)) {
      assertThatThrownBy(() -> h.load(file))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("cpu/xregs")
          .hasMessageContaining("'cpu'")
          .hasMessageContaining("version 1");
      assertThat(h.machine().isRunning()).isFalse();
    }
  }

  @Test
  void v2SnapshotUsingTheSinceFieldFailsInV1NamingTheVersions() throws Exception {
    Path file = v2Snapshot(0x10, 0);
    try (MachineHost h = host("idle", CpuDevice.Layout.V1)) {
      assertThatThrownBy(() -> h.load(file))
          .isInstanceOfSatisfying(VersionMismatchException.class, e -> {
            assertThat(e.tooNew()).isTrue();
            assertThat(e.actual()).isEqualTo(2);
            assertThat(e.maximum()).isEqualTo(1);
          })
          .hasMessageContaining("cpu");
    }
  }

  @Test
  void v2RoundTripKeepsFlagsAndExtendedRegisters() throws Exception {
    for (int flags : new int[] {0, 0x10, -1}) {
      for (long x : new long[] {0, -5}) {
        Path file = v2Snapshot(flags, x);
        try (MachineHost h = host("idle", CpuDevice.Layout.V2)) {
          h.load(file);
          CpuDevice cpu = h.machine().cpu(0);
          assertThat(cpu.flags()).isEqualTo(flags);
          assertThat(cpu.xreg(7)).isEqualTo(x);
          assertThat(cpu.reg(4)).isEqualTo(44);
        }
      }
    }
  }

  @Test
  void layoutComesFromTheSystemPropertyUnlessTheBuilderSetsIt() {
    String old = System.getProperty(CpuDevice.Layout.PROPERTY);
    try {
      System.clearProperty(CpuDevice.Layout.PROPERTY);
      assertThat(CpuDevice.Layout.configured()).isEqualTo(CpuDevice.Layout.V2);
      System.setProperty(CpuDevice.Layout.PROPERTY, "1");
      assertThat(CpuDevice.Layout.configured()).isEqualTo(CpuDevice.Layout.V1);
      try (Machine m = Machine.builder().memory(64 << 10).build()) {
        assertThat(m.cpu(0).layout()).isEqualTo(CpuDevice.Layout.V1);
        assertThatThrownBy(() -> m.cpu(0).setFlags(1)).isInstanceOf(IllegalStateException.class);
      }
      try (Machine m = Machine.builder().memory(64 << 10).cpuLayout(CpuDevice.Layout.V2).build()) {
        assertThat(m.cpu(0).layout()).isEqualTo(CpuDevice.Layout.V2);
      }
      System.setProperty(CpuDevice.Layout.PROPERTY, "3");
      assertThatThrownBy(CpuDevice.Layout::configured).hasMessageContaining(CpuDevice.Layout.PROPERTY);
    } finally {
      if (old == null) {
        System.clearProperty(CpuDevice.Layout.PROPERTY);
      } else {
        System.setProperty(CpuDevice.Layout.PROPERTY, old);
      }
    }
  }
}
