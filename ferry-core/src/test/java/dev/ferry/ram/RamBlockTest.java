package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RamBlockTest {
  private static final long GIB = 1L << 30;

  /** A file-mapped block (ferry analyze --extract): what is written is the file; dropResident loses nothing. */
  @Test
  void fileMappedBlockKeepsItsPagesInTheFileThroughDropResident(@TempDir Path tmp) throws Exception {
    Path file = Files.write(tmp.resolve("pc.ram"), new byte[] {1, 2, 3}); // emptied by mapFile
    long length = 64 * 4096;
    try (RamBlock block = RamBlock.mapFile("pc.ram", length, file)) {
      assertThat(block.isLazilyCommitted()).isFalse();
      assertThat(block.memory().get(ValueLayout.JAVA_LONG, 0)).isZero();
      for (long p = 0; p < 64; p += 3) {
        block.memory().set(ValueLayout.JAVA_LONG, p * 4096 + 8, p + 1);
      }
      block.dropResident();
      for (long p = 0; p < 64; p++) {
        assertThat(block.memory().get(ValueLayout.JAVA_LONG, p * 4096 + 8)).isEqualTo(p % 3 == 0 ? p + 1 : 0);
      }
      block.memory().set(ValueLayout.JAVA_LONG, 4096 + 8, 99L);
      block.dropResident();
    }
    byte[] content = Files.readAllBytes(file);
    assertThat(content).hasSize(64 * 4096);
    java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(content).order(java.nio.ByteOrder.nativeOrder());
    assertThat(b.getLong(8)).isEqualTo(1L);
    assertThat(b.getLong(4096 + 8)).isEqualTo(99L);
    assertThat(b.getLong(63 * 4096 + 8)).isEqualTo(64L);
    assertThat(b.getLong(2 * 4096 + 8)).isZero();
  }

  @Test
  void eightGibBlockIsMappedLazilyAndReadsZero() {
    try (RamBlock block = RamBlock.allocate("ram", 8 * GIB)) {
      assertThat(block.isLazilyCommitted()).as("mmap backing on Linux").isTrue();
      assertThat(block.usedLength()).isEqualTo(8 * GIB);
      assertThat(block.memory().get(ValueLayout.JAVA_BYTE, 0)).isZero();
      assertThat(block.memory().get(ValueLayout.JAVA_LONG, 8 * GIB - 8)).isZero();
      assertThat(block.memory().get(ValueLayout.JAVA_LONG, 5 * GIB + 4096)).isZero();
      block.memory().set(ValueLayout.JAVA_LONG, 5 * GIB, 42L);
      assertThat(block.memory().get(ValueLayout.JAVA_LONG, 5 * GIB)).isEqualTo(42L);
    }
  }

  @Test
  void hugePageBlockIsAlignedToItsPageSize() {
    int twoMib = 2 << 20;
    try (RamBlock block = RamBlock.allocate("big", 64L << 20, twoMib)) {
      assertThat(block.memory().address() % twoMib).isZero();
      assertThat(block.pageSize()).isEqualTo(twoMib);
      block.memory().set(ValueLayout.JAVA_BYTE, (64L << 20) - 1, (byte) 7);
      assertThat(block.memory().get(ValueLayout.JAVA_BYTE, (64L << 20) - 1)).isEqualTo((byte) 7);
    }
  }

  @Test
  void discardMakesPagesReadZeroAndLeavesNeighbours() {
    try (RamBlock block = RamBlock.allocate("ram", 1 << 20)) {
      block.memory().fill((byte) 0x5a);
      block.discard(8192, 3 * 4096);
      assertThat(block.memory().get(ValueLayout.JAVA_BYTE, 8191)).isEqualTo((byte) 0x5a);
      for (long off = 8192; off < 8192 + 3 * 4096; off += 512) {
        assertThat(block.memory().get(ValueLayout.JAVA_BYTE, off)).as("offset %d", off).isZero();
      }
      assertThat(block.memory().get(ValueLayout.JAVA_BYTE, 8192 + 3 * 4096)).isEqualTo((byte) 0x5a);
      // the page is usable again afterwards
      block.memory().set(ValueLayout.JAVA_BYTE, 8192, (byte) 1);
      assertThat(block.memory().get(ValueLayout.JAVA_BYTE, 8192)).isEqualTo((byte) 1);
    }
  }

  @Test
  void discardRejectsUnalignedOrOutOfRange() {
    try (RamBlock block = RamBlock.allocate("ram", 1 << 20)) {
      assertThatThrownBy(() -> block.discard(100, 4096)).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> block.discard(0, 100)).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> block.discard(1 << 20, 4096)).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> block.discard(-4096, 4096)).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void closedBlockRefusesAccess() {
    RamBlock block = RamBlock.allocate("ram", 1 << 20);
    block.close();
    assertThatThrownBy(() -> block.memory().get(ValueLayout.JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> block.discard(0, 4096)).isInstanceOf(IllegalStateException.class);
  }
}
