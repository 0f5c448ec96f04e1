package dev.ferry.machine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Made the committed cpu-layout-v1 snapshots under {@code src/test/resources/golden/} once, by
 * hand (see the README there). Not a test: the tests only read those files and never regenerate
 * them. Kept so the recipe stays reviewable.
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp <ferry-core classes + test-classes +
 * slf4j> dev.ferry.machine.GoldenCpuV1Generator OUT_DIR}.
 */
final class GoldenCpuV1Generator {
  /** RAM of the golden machines: one block {@code ram}, 4 KiB pages. */
  static final long MEMORY_BYTES = 64 << 10;

  private GoldenCpuV1Generator() {}

  /** Program options of the golden machines (3 pages a step, so the stress pattern is not trivial). */
  static final ProgramOptions OPTIONS = ProgramOptions.defaults().withPagesPerStep(3);

  /**
   * The machine the goldens were taken of (machine type {@code ferry-1.0}, the type their
   * configuration section names), with the cpu layout overridden to {@code layout}.
   */
  static Machine.Builder machine(String program, CpuDevice.Layout layout) {
    return Machine.builder().machineType(MachineType.FERRY_1_0).memory(MEMORY_BYTES).program(program).programOptions(OPTIONS).cpuLayout(layout);
  }

  static Machine.Builder v1Machine(String program) {
    return machine(program, CpuDevice.Layout.V1);
  }

  /** Register values of {@code cpu-v1-registers.ferry}. */
  static long goldenReg(int i) {
    return 0x0102030405060708L * (i + 1) ^ (i % 2 == 0 ? -1L : 0);
  }

  public static void main(String[] args) throws IOException, InterruptedException {
    Path out = Path.of(args[0]);
    Files.createDirectories(out);
    // A paused idle machine with known register values.
    try (MachineHost h = new MachineHost(v1Machine("idle").build())) {
      CpuDevice cpu = h.machine().cpu(0);
      for (int i = 0; i < CpuDevice.REGISTER_COUNT; i++) {
        cpu.setReg(i, goldenReg(i));
      }
      cpu.setPc(0x1234);
      cpu.setSteps(777);
      h.machine().pause();
      h.save(out.resolve("cpu-v1-registers.ferry"));
    }
    // A running stress guest (saved mid-pass).
    try (MachineHost h = new MachineHost(v1Machine("stress").build())) {
      h.machine().resume();
      Thread.sleep(50);
      h.save(out.resolve("cpu-v1-stress.ferry"));
    }
  }
}
