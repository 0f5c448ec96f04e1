package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.ValueLayout;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class RamDigestTest {
  private static final long MIB = 1 << 20;

  @Test
  void pagesAreTheirCrc32cAndUntouchedOnesAreNotFaultedIn() {
    try (RamBlock b = RamBlock.allocate("ram", 8 * MIB)) {
      b.memory().set(ValueLayout.JAVA_BYTE, 4096 * 3 + 17, (byte) 0x5a);
      int[] crcs = RamDigest.pageCrcs(b);
      assertThat(crcs).hasSize(2048);
      byte[] page = new byte[4096];
      page[17] = 0x5a;
      CRC32C c = new CRC32C();
      c.update(page);
      assertThat(crcs[3]).isEqualTo((int) c.getValue());
      assertThat(crcs[4]).isEqualTo(RamDigest.ZERO_PAGE_CRC);
      assertThat(crcs[2047]).isEqualTo(RamDigest.ZERO_PAGE_CRC);
      try (PageMap map = PageMap.open()) {
        if (map != null && b.isLazilyCommitted()) {
          long base = b.memory().address();
          assertThat(map.untouched(base + 4 * MIB)).as("the digest left an untouched page untouched").isTrue();
        }
      }
    }
  }

  @Test
  void aPageWrittenBackToZerosDigestsAsAnUntouchedOne() {
    try (RamBlock touched = RamBlock.allocate("ram", MIB); RamBlock fresh = RamBlock.allocate("ram", MIB)) {
      touched.memory().set(ValueLayout.JAVA_LONG, 8192, 42L);
      touched.memory().set(ValueLayout.JAVA_LONG, 8192, 0L);
      assertThat(RamDigest.pageCrcs(touched)).isEqualTo(RamDigest.pageCrcs(fresh));
    }
  }
}
