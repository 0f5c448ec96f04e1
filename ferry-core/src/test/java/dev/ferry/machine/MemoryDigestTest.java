package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.RamBlock;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class MemoryDigestTest {
  private static final long SEED = Long.getLong("ferry.seed", 8L);

  private static MachineHost twoBlocks() {
    return new MachineHost(
        Machine.builder()
            .ramBlock("ram", 8 << 20)
            .ramBlock("vram", 4 << 20)
            .program("idle")
            .serial(new ByteArrayOutputStream())
            .build());
  }

  /** The same pseudo-random pages written into both machines. */
  private static void fill(MachineHost h, long seed) {
    Random r = new Random(seed);
    for (RamBlock b : h.machine().ramBlocks()) {
      for (int i = 0; i < 64; i++) {
        long off = (r.nextLong(b.targetPageCount())) * 4096 + r.nextInt(4096 / 8) * 8;
        b.memory().set(ValueLayout.JAVA_LONG, off, r.nextLong());
      }
    }
  }

  @Test
  void equalMachinesHaveEqualDigests() {
    try (MachineHost a = twoBlocks(); MachineHost b = twoBlocks()) {
      fill(a, SEED);
      fill(b, SEED);
      MemoryDigest da = a.memoryDigest();
      MemoryDigest db = b.memoryDigest();
      assertThat(da.firstDifference(db)).as("seed %d", SEED).isEmpty();
      assertThat(da).isEqualTo(db);
      assertThat(da.algorithm()).isEqualTo(MemoryDigest.ALGORITHM);
      assertThat(da.blocks()).extracting(MemoryDigest.Block::name).containsExactly("ram", "vram");
      assertThat(da.blocks()).extracting(MemoryDigest.Block::length).containsExactly(8L << 20, 4L << 20);
      assertThat(da.ram()).hasSize(16);
      assertThat(da.bytes()).isGreaterThan(12L << 20);
      assertThat(da.sections()).extracting(MemoryDigest.Section::idstr).contains("cpu", "ferry-ram-layout").doesNotContain("globalstate");
      // a second digest of the same machine is the same
      assertThat(a.memoryDigest()).isEqualTo(da);
    }
  }

  @Test
  void oneByteChangedInAnyBlockIsNamedByBlockAndPage() {
    Random r = new Random(SEED);
    for (String block : List.of("ram", "vram")) {
      try (MachineHost a = twoBlocks(); MachineHost b = twoBlocks()) {
        fill(a, SEED);
        fill(b, SEED);
        RamBlock target = b.machine().ramBlocks().stream().filter(x -> x.name().equals(block)).findFirst().orElseThrow();
        long page = r.nextLong(target.targetPageCount());
        long off = page * 4096 + r.nextInt(4096);
        byte old = target.memory().get(ValueLayout.JAVA_BYTE, off);
        target.memory().set(ValueLayout.JAVA_BYTE, off, (byte) (old ^ 1));
        MemoryDigest da = a.memoryDigest();
        MemoryDigest db = b.memoryDigest();
        assertThat(da.ram()).isNotEqualTo(db.ram());
        assertThat(da.devices()).isEqualTo(db.devices());
        assertThat(da.firstDifference(db))
            .as("seed %d", SEED)
            .contains("block '" + block + "' differs first at page 0x" + Long.toHexString(page * 4096) + " (1 of "
                + target.targetPageCount() + " pages differ)");
      }
    }
  }

  @Test
  void withoutPageDigestsTheBlockIsStillNamed() {
    try (MachineHost a = twoBlocks(); MachineHost b = twoBlocks()) {
      b.machine().ramBlocks().get(1).memory().set(ValueLayout.JAVA_BYTE, 4096, (byte) 1);
      MemoryDigest da = a.memoryDigest();
      MemoryDigest db = b.memoryDigest();
      MemoryDigest bare =
          new MemoryDigest(db.algorithm(), db.ram(), db.devices(), db.bytes(), db.blocks(), db.sections(), Map.of());
      assertThat(da.firstDifference(bare)).contains("RAM block 'vram' differs (no page digests to name the page)");
      assertThat(bare).isEqualTo(db);
    }
  }

  @Test
  void aNeverTouchedPageEqualsAZeroPage() {
    try (MachineHost a = twoBlocks(); MachineHost b = twoBlocks()) {
      RamBlock ram = b.machine().ramBlocks().getFirst();
      ram.memory().set(ValueLayout.JAVA_LONG, 5 * 4096, -1L);
      ram.memory().set(ValueLayout.JAVA_LONG, 5 * 4096, 0L);
      assertThat(a.memoryDigest().firstDifference(b.memoryDigest())).isEmpty();
    }
  }

  @Test
  void aDeviceStateChangeChangesTheDevicesDigestAndNamesTheSection() {
    try (MachineHost a = twoBlocks(); MachineHost b = twoBlocks()) {
      b.machine().cpu(0).setXreg(3, 0x1234);
      MemoryDigest da = a.memoryDigest();
      MemoryDigest db = b.memoryDigest();
      assertThat(da.ram()).isEqualTo(db.ram());
      assertThat(da.devices()).isNotEqualTo(db.devices());
      assertThat(da.firstDifference(db)).hasValueSatisfying(s -> assertThat(s).startsWith("device state differs first in section 'cpu' instance 0"));
    }
  }

  @Test
  void aRunningGuestIsPausedForTheDigestAndRunsAgainAfterwards() throws Exception {
    try (MachineHost h =
        new MachineHost(Machine.builder().memory(8 << 20).program("stress").serial(new ByteArrayOutputStream()).build())) {
      h.machine().resume();
      MemoryDigest d = h.memoryDigest();
      assertThat(h.machine().runState()).isEqualTo(RunState.RUNNING);
      assertThat(d.blocks()).hasSize(1);
      h.machine().pause();
      MemoryDigest stopped = h.memoryDigest();
      assertThat(h.machine().runState()).isEqualTo(RunState.PAUSED);
      assertThat(h.memoryDigest()).isEqualTo(stopped);
    }
  }

  @Test
  void refusedWhileWaitingForAnIncomingMigration() {
    try (MachineHost h = twoBlocks()) {
      h.machine().stop(RunState.INMIGRATE);
      assertThatThrownBy(h::memoryDigest).isInstanceOf(IllegalStateException.class).hasMessage("Guest is waiting for an incoming migration");
    }
  }
}
