package dev.ferry.machine;

import static dev.ferry.machine.FreshRamMigrationTest.assertSameState;
import static dev.ferry.machine.FreshRamMigrationTest.awaitTrue;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.MappedRamLayout;
import dev.ferry.ram.RamBlock;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A live {@code file:} migration with {@code mapped-ram} (QEMU 9.0): a busy guest dirtying RAM for
 * several passes leaves a file no bigger than its RAM plus bitmaps, alignment and device state,
 * and the file loads into a destination with the stopped source's exact digest. The capability's
 * rules: a file: URI only, both sides, not with xbzrle or postcopy.
 */
@Timeout(120)
class MappedRamMigrationTest {
  private static final long MIB = 1 << 20;

  @TempDir Path dir;

  private static MachineHost stress(long memory, long rate) {
    ProgramOptions o = ProgramOptions.defaults().withStressRateBytesPerSec(rate).withPagesPerStep(64);
    return new MachineHost(Machine.builder().memory(memory).program("stress").programOptions(o).serial(new ByteArrayOutputStream()).build());
  }

  private static void mappedRam(MachineHost h) {
    h.migration().setCapabilities(Map.of(MigrationCapability.MAPPED_RAM, true));
  }

  @Test
  void aBusyGuestsFileStaysWithinRamPlusBitmapsAndLoadsExactly() throws Exception {
    long memory = 32 * MIB;
    Path file = dir.resolve("busy.mapped");
    try (MachineHost src = stress(memory, 24 * MIB); MachineHost dst = stress(memory, 24 * MIB)) {
      mappedRam(src);
      mappedRam(dst);
      // the guest sweeps RAM at 24 MiB/s while the file is written at 40 MiB/s: several passes
      src.migration().setParameters(Map.of("max-bandwidth", 40 * MIB));
      src.machine().resume();
      awaitTrue(() -> src.machine().cpu(0).reg(2) >= 1); // every page written once: none is zero
      OutgoingMigration out = src.migration().migrate("file:" + file);
      MigrationStatus end = out.await(90, TimeUnit.SECONDS);
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      long passes = out.stats().dirtySyncCount();
      long sent = out.transferredBytes();
      long size = Files.size(file);
      long bound = 0;
      for (RamBlock b : src.machine().ramBlocks()) {
        bound += b.usedLength() + MappedRamLayout.FILE_OFFSET_ALIGNMENT + MappedRamLayout.bitmapBytes(b.usedLength());
      }
      bound += MIB; // the stream around RAM: header, configuration, iterations' sections, device state, vmdesc
      System.out.printf("mapped-ram: %d MiB guest, %d dirty syncs, %d bytes written, file %d bytes (bound %d)%n",
          memory / MIB, passes, sent, size, bound);
      assertThat(passes).as("dirty syncs").isGreaterThanOrEqualTo(3);
      assertThat(sent).as("bytes written: the guest dirtied RAM again and again").isGreaterThan(memory + memory / 4);
      assertThat(size).isLessThanOrEqualTo(bound);
      dst.incoming("file:" + file, null);
      assertSameState(src, dst);
    }
  }

  /**
   * The file of an idle machine with data in every third page: a destination without the capability
   * refuses it (the configuration lists mapped-ram); one with it, whose RAM holds other data
   * everywhere, loads it exactly (pages absent from the file are zeroed there).
   */
  @Test
  void aDestinationWithoutTheCapabilityRefusesTheFileAndOneWithDataInRamLoadsItExactly() throws Exception {
    Path file = dir.resolve("idle.mapped");
    try (MachineHost src = new MachineHost(Machine.builder().memory(8 * MIB).program("idle").build());
        MachineHost plain = new MachineHost(Machine.builder().memory(8 * MIB).program("idle").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(8 * MIB).program("idle").build())) {
      try (GuestMemory g = src.machine().ram().openMemory()) {
        for (long p = 0; p < 2048; p += 3) {
          g.fillPage(0, p, (byte) (1 + p % 251));
        }
      }
      mappedRam(src);
      assertThat(src.migration().migrate("file:" + file).await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
      assertThatThrownBy(() -> plain.incoming("file:" + file, null))
          .hasMessageContaining("validated capabilities differ: stream [mapped-ram], here []");
      try (GuestMemory g = dst.machine().ram().openMemory()) {
        for (long p = 0; p < 2048; p++) {
          g.fillPage(0, p, (byte) 0x5a);
        }
      }
      mappedRam(dst);
      dst.incoming("file:" + file, null);
      assertSameState(src, dst);
    }
  }

  @Test
  void theCapabilityNeedsAFileAndRefusesXbzrleAndPostcopy() throws Exception {
    try (MachineHost h = stress(8 * MIB, 64 * MIB)) {
      mappedRam(h);
      assertThatThrownBy(() -> h.migration().migrate("tcp:127.0.0.1:9"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("Migration requires seekable transport (e.g. file)");
      assertThatThrownBy(() -> h.incoming("unix:" + dir.resolve("in.sock"), null))
          .hasMessage("Migration requires seekable transport (e.g. file)");
      assertThat(h.migration().outgoingState().status()).isEqualTo(MigrationStatus.NONE);
      assertThatThrownBy(() -> h.migration().setCapabilities(Map.of(MigrationCapability.XBZRLE, true)))
          .hasMessage("Mapped-ram migration is incompatible with xbzrle");
      assertThatThrownBy(() -> h.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true)))
          .hasMessage("Mapped-ram migration is incompatible with postcopy");
      assertThat(h.migration().capability(MigrationCapability.MAPPED_RAM)).isTrue();
    }
  }
}
