package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class GuestMemoryTest {

  @Test
  void valuesAreLittleEndianAndBulkOpsWork() {
    try (GuestRam ram = new GuestRam(List.of(RamBlock.allocate("ram", 64 << 10)));
        GuestMemory mem = ram.openMemory()) {
      mem.putLong(0, 16, 0x0102030405060708L);
      assertThat(ram.block("ram").memory().get(ValueLayout.JAVA_BYTE, 16)).isEqualTo((byte) 8);
      assertThat(mem.getLong(0, 16)).isEqualTo(0x0102030405060708L);
      assertThat(mem.getInt(0, 16)).isEqualTo(0x05060708);
      mem.putInt(0, 100, -2);
      assertThat(mem.getInt(0, 100)).isEqualTo(-2);
      assertThat(mem.addByte(0, 7, 255)).isEqualTo((byte) -1);

      mem.fillPage(0, 2, (byte) 3);
      byte[] page = new byte[4096];
      mem.readPage(0, 2, page);
      assertThat(page).containsOnly((byte) 3);
      mem.copy(0, 2 * 4096, 0, 5 * 4096, 4096);
      assertThat(mem.getByte(0, 5 * 4096 + 4095)).isEqualTo((byte) 3);
      page[0] = 9;
      mem.writePage(0, 6, page);
      assertThat(mem.getByte(0, 6 * 4096)).isEqualTo((byte) 9);

      assertThatThrownBy(() -> mem.putLong(0, (64 << 10) - 4, 1)).isInstanceOf(IndexOutOfBoundsException.class);
      assertThat(mem.inStep()).isFalse(); // the failed auto-step was closed
      assertThatThrownBy(mem::exitStep).isInstanceOf(IllegalStateException.class);
    }
  }

  @Test
  void pageFaultHandlerSeesEveryAccessWhenInstalled() {
    try (GuestRam ram = new GuestRam(List.of(RamBlock.allocate("ram", 64 << 10)));
        GuestMemory mem = ram.openMemory()) {
      List<String> faults = new ArrayList<>();
      mem.putByte(0, 0, (byte) 1);
      ram.setPageFaultHandler((block, offset, length) -> faults.add(block + ":" + offset + "+" + length));
      mem.enterStep();
      mem.putLong(0, 8192, 1);
      mem.getByte(0, 3);
      mem.exitStep();
      mem.fill(0, 4096, 4096, (byte) 0);
      ram.setPageFaultHandler(null);
      mem.putByte(0, 0, (byte) 1);
      assertThat(faults).containsExactly("0:8192+8", "0:3+1", "0:4096+4096");
    }
  }
}
