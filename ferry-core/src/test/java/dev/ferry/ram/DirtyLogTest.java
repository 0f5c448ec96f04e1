package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class DirtyLogTest {

  @Test
  void logOffRecordsNoMarks() {
    try (GuestRam ram = new GuestRam(List.of(RamBlock.allocate("ram", 1 << 20)));
        GuestMemory mem = ram.openMemory()) {
      mem.putByte(0, 0, (byte) 1);
      mem.enterStep();
      for (long p = 0; p < mem.pageCount(0); p++) {
        mem.putLong(0, p * 4096 + 8, p);
      }
      mem.exitStep();
      List<DirtyBitmap> bitmaps = ram.dirtyLog().newBitmaps();
      assertThat(ram.dirtyLog().harvestInto(bitmaps)).isZero();
      assertThat(bitmaps.getFirst().cardinality()).isZero();
    }
  }

  @Test
  void marksWrittenPagesOnceAndClearsThemOnHarvest() {
    try (GuestRam ram =
            new GuestRam(List.of(RamBlock.allocate("ram", 1 << 20), RamBlock.allocate("vga", 64 << 10)));
        GuestMemory mem = ram.openMemory()) {
      DirtyLog log = ram.dirtyLog();
      log.start();
      mem.putByte(0, 5 * 4096 + 3, (byte) 1);
      mem.putLong(0, 7 * 4096 - 4, 1L); // straddles pages 6 and 7
      mem.fill(1, 4096, 2 * 4096, (byte) 9); // pages 1, 2 of block 1
      mem.enterStep();
      mem.addByte(0, 100 * 4096, 1);
      mem.write(0, 200 * 4096, new byte[] {1, 2, 3}, 0, 3);
      mem.exitStep();

      List<DirtyBitmap> bitmaps = log.newBitmaps();
      assertThat(log.harvestInto(bitmaps)).isEqualTo(7);
      assertThat(pages(bitmaps.get(0))).containsExactly(5L, 6L, 7L, 100L, 200L);
      assertThat(pages(bitmaps.get(1))).containsExactly(1L, 2L);

      List<DirtyBitmap> again = log.newBitmaps();
      assertThat(log.harvestInto(again)).isZero();
      assertThat(log.syncCount()).isEqualTo(2);

      log.stop();
      mem.putByte(0, 0, (byte) 1);
      assertThat(log.harvestInto(again)).isZero();
    }
  }

  @Test
  void marksOfAClosedHandleAreStillHarvested() {
    try (GuestRam ram = new GuestRam(List.of(RamBlock.allocate("ram", 1 << 20)))) {
      ram.dirtyLog().start();
      GuestMemory mem = ram.openMemory();
      mem.putByte(0, 3 * 4096, (byte) 1);
      mem.close();
      List<DirtyBitmap> bitmaps = ram.dirtyLog().newBitmaps();
      ram.dirtyLog().harvestInto(bitmaps);
      assertThat(pages(bitmaps.getFirst())).containsExactly(3L);
    }
  }

  @Test
  void bitmapBasics() {
    DirtyBitmap b = new DirtyBitmap(130);
    b.setAll();
    assertThat(b.cardinality()).isEqualTo(130);
    assertThat(b.testAndClear(64)).isTrue();
    assertThat(b.testAndClear(64)).isFalse();
    assertThat(b.nextSetBit(64)).isEqualTo(65);
    b.clearAll();
    assertThat(b.nextSetBit(0)).isEqualTo(-1);
    b.set(129);
    assertThat(b.nextSetBit(0)).isEqualTo(129);
    assertThat(b.nextSetBit(130)).isEqualTo(-1);
  }

  static List<Long> pages(DirtyBitmap b) {
    java.util.ArrayList<Long> out = new java.util.ArrayList<>();
    for (long p = b.nextSetBit(0); p >= 0; p = b.nextSetBit(p + 1)) {
      out.add(p);
    }
    return out;
  }
}
