package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The shortcuts that skip reading guest RAM: pagemap, fresh destinations, preallocation. */
class RamFastPathTest {
  private static final long MIB = 1 << 20;

  @Test
  void pagemapTellsUntouchedPagesFromWrittenOnes() {
    try (RamBlock b = RamBlock.allocate("ram", 4 * MIB); PageMap map = PageMap.open()) {
      if (map == null || !b.isLazilyCommitted()) {
        return; // no pagemap here: every page counts as touched, which is always safe
      }
      long base = b.memory().address();
      assertThat(map.untouched(base + 3 * MIB)).isTrue();
      b.memory().set(ValueLayout.JAVA_BYTE, 3 * MIB + 5, (byte) 1);
      try (PageMap fresh = PageMap.open()) {
        assertThat(fresh.untouched(base + 3 * MIB)).isFalse();
      }
    }
  }

  @Test
  void preallocateKeepsTheContent() {
    try (RamBlock b = RamBlock.allocate("ram", 4 * MIB)) {
      b.memory().set(ValueLayout.JAVA_LONG, 8192, 0x1122334455667788L);
      b.preallocate();
      assertThat(b.memory().get(ValueLayout.JAVA_LONG, 8192)).isEqualTo(0x1122334455667788L);
      assertThat(RamRecordWriter.isZero(b.targetPage(4096))).isTrue();
      try (PageMap map = PageMap.open()) {
        if (map != null) {
          assertThat(map.untouched(b.memory().address() + 2 * MIB)).as("committed now").isFalse();
        }
      }
    }
  }

  /** A fresh destination skips zero records unread, but a page this load wrote must be zeroed. */
  @Test
  void zeroRecordAfterAPageInTheSameLoadClearsIt() throws IOException {
    try (RamBlock src = RamBlock.allocate("ram", MIB); RamBlock dst = RamBlock.allocate("ram", MIB)) {
      src.memory().set(ValueLayout.JAVA_BYTE, 4096 + 7, (byte) 9);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
      RamRecordWriter w = new RamRecordWriter(out);
      w.writeBlockList(List.of(src), false);
      w.writePageCopy(src, 4096, src.targetPage(4096)); // round 1: the page has data
      w.writeZeroPage(src, 8192); // never written here: skipped unread
      w.writeEos();
      w.writeZeroPage(src, 4096); // round 2: the guest cleared it
      w.writeEos();
      out.flush();
      RamLoader loader =
          new RamLoader(RamBlockResolver.of(List.of(dst)), RamLoadOptions.defaults().withBlocksStartZeroed(true));
      MigrationInput in = MigrationInput.of(bytes.toByteArray());
      loader.loadChunk(in);
      assertThat(dst.memory().get(ValueLayout.JAVA_BYTE, 4096 + 7)).isEqualTo((byte) 9);
      loader.loadChunk(in);
      assertThat(RamRecordWriter.isZero(dst.targetPage(4096))).isTrue();
      assertThat(RamRecordWriter.isZero(dst.targetPage(8192))).isTrue();
    }
  }
}
