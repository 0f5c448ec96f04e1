package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.RamBlock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry analyze} on a mapped-ram file of a machine with two RAM blocks: the configuration's
 * capability, each block's header (offsets computed from the layout) and bitmap summary, and
 * {@code --extract} rebuilding both blocks byte for byte.
 */
@Timeout(60)
class MappedRamAnalyzeTest {
  @TempDir Path tmp;

  @Test
  void listsEachBlocksHeaderAndBitmapAndExtractsItsRam() throws Exception {
    Path file = tmp.resolve("two-blocks.mapped");
    byte[] ram;
    byte[] vram;
    try (MachineHost h = new MachineHost(Machine.builder().ramBlock("ram", 1 << 20).ramBlock("vram", 256 << 10).program("idle").build())) {
      try (GuestMemory g = h.machine().ram().openMemory()) {
        for (long p = 0; p < 256; p += 5) {
          g.fillPage(0, p, (byte) (p + 1)); // page 255 is filled with 0: a zero page, absent from the file
        }
        g.fillPage(1, 63, (byte) 0x5a);
      }
      h.migration().setCapabilities(Map.of(MigrationCapability.MAPPED_RAM, true));
      assertThat(h.migration().migrate("file:" + file).await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
      ram = bytes(h.machine().ramBlocks().get(0));
      vram = bytes(h.machine().ramBlocks().get(1));
    }
    AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry("analyze", file.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out())
        .contains("capabilities [mapped-ram]")
        .containsPattern("MAPPED-RAM +block 'ram' length 0x100000: header version 1, page size 0x1000, bitmap at 0x86 \\(0x20 bytes\\), pages at 0x100000")
        .contains("block 'ram' pages: 51 of 256 present (205 absent: zero)")
        // the second block's entry follows the first block's page region: its pages at the next MiB after it
        .containsPattern("MAPPED-RAM +block 'vram' length 0x40000: header version 1, page size 0x1000, bitmap at 0x2[0-9a-f]{5} \\(0x8 bytes\\), pages at 0x300000")
        .contains("block 'vram' pages: 1 of 64 present (63 absent: zero)");
    Path x = tmp.resolve("x");
    AnalyzeCommandTest.Run e = AnalyzeCommandTest.ferry("analyze", file.toString(), "--extract", x.toString());
    assertThat(e.exit()).as(e.err()).isZero();
    assertThat(Files.readAllBytes(x.resolve("ram"))).isEqualTo(ram);
    assertThat(Files.readAllBytes(x.resolve("vram"))).isEqualTo(vram);
  }

  private static byte[] bytes(RamBlock b) {
    return b.memory().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
  }
}
