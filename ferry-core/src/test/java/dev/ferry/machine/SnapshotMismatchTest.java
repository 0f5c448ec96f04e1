package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationStreamException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Issue 3 item 4: a snapshot of a machine with a different RAM layout or device set does not load,
 * and the error names the block or device that differs.
 */
@Timeout(60)
class SnapshotMismatchTest {
  @TempDir static Path dir;

  private static final long MIB = 1 << 20;

  /** A machine shape: builds a machine from a builder and the temp dir (for disks). */
  interface Shape extends BiFunction<Machine.Builder, Path, Machine.Builder> {}

  record Case(String name, Shape source, Shape destination, List<String> expected) {
    @Override
    public String toString() {
      return name;
    }
  }

  static final Shape BASE = (b, d) -> b.ramBlock("ram", 2 * MIB);

  static final List<Case> CASES =
      List.of(
          new Case("block name", BASE, (b, d) -> b.ramBlock("mem", 2 * MIB), List.of("'ram'", "mem")),
          new Case("block size", BASE, (b, d) -> b.ramBlock("ram", 4 * MIB), List.of("'ram'", "length", "0x200000", "0x400000")),
          // QEMU 7.2's block list carries a page size only when postcopy is advised: the
          // ferry-ram-layout section catches a page-size-only difference
          new Case("block page size", (b, d) -> b.ramBlock("ram", 2 * MIB, 2 << 20), BASE,
              List.of("'ram'", "2097152-byte pages in the stream", "4096-byte pages on this machine")),
          new Case("extra block in snapshot", (b, d) -> b.ramBlock("ram", 2 * MIB).ramBlock("vram", MIB), BASE, List.of("'vram'")),
          new Case("block missing from snapshot", BASE, (b, d) -> b.ramBlock("ram", 2 * MIB).ramBlock("vram", MIB), List.of("'vram'")),
          new Case("extra device (disk) in snapshot", (b, d) -> BASE.apply(b, d).disk(d.resolve("src.img"), MIB), BASE, List.of("'disk'")),
          new Case("device missing from snapshot (disk)", BASE, (b, d) -> BASE.apply(b, d).disk(d.resolve("dst.img"), MIB), List.of("'disk'")),
          new Case("extra cpu instance in snapshot", (b, d) -> BASE.apply(b, d).vcpus(2), BASE, List.of("'cpu'", "instance 1")),
          new Case("cpu instance missing from snapshot", BASE, (b, d) -> BASE.apply(b, d).vcpus(3), List.of("'cpu'", "instance 1")));

  @ParameterizedTest(name = "{0}")
  @FieldSource("CASES")
  void refusedNamingWhatDiffers(Case c) throws Exception {
    Path file = dir.resolve(c.name().replace(' ', '-') + ".ferry");
    try (MachineHost src = new MachineHost(c.source().apply(Machine.builder().program("idle"), dir).build())) {
      src.save(file);
    }
    try (MachineHost dst = new MachineHost(c.destination().apply(Machine.builder().program("idle"), dir).build())) {
      assertThatThrownBy(() -> dst.load(file))
          .isInstanceOf(MigrationStreamException.class)
          .satisfies(e -> {
            for (String s : c.expected()) {
              assertThat(e.getMessage()).contains(s);
            }
          });
      assertThat(dst.machine().isRunning()).isFalse();
    }
  }

  @ParameterizedTest(name = "{0}")
  @FieldSource("CASES")
  void theSameShapeLoads(Case c) throws Exception {
    Path file = dir.resolve("same-" + c.name().replace(' ', '-') + ".ferry");
    try (MachineHost src = new MachineHost(c.source().apply(Machine.builder().program("idle"), dir).build())) {
      src.save(file);
    }
    try (MachineHost dst = new MachineHost(c.source().apply(Machine.builder().program("idle"), dir).build())) {
      dst.load(file);
    }
  }
}
