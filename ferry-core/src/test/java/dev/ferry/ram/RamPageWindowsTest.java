package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.testing.FragmentingChannel;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pages of a block larger than the 1 GiB views the output and input reuse per page: pages on both
 * sides of each window edge go out by reference (gathering) and come back through a scattering,
 * fragmented channel into the right place of the destination block. Lazily mapped blocks only, so
 * the 3 GiB cost nothing.
 */
class RamPageWindowsTest {
  private static final long GIB = 1L << 30;
  private static final int TPS = 4096;

  @TempDir Path tmp;

  @Test
  void pagesAroundEveryWindowEdgeRoundTrip() throws IOException {
    assumeTrue(NativeMemory.isAvailable(), "no anonymous mmap here: a 3 GiB block would be committed");
    long[] offsets = {0, GIB - TPS, GIB, GIB + TPS, 2 * GIB - TPS, 2 * GIB + 7 * TPS, 3 * GIB - TPS};
    try (RamBlock src = RamBlock.allocate("pc.ram", 3 * GIB); RamBlock dst = RamBlock.allocate("pc.ram", 3 * GIB)) {
      for (int i = 0; i < offsets.length; i++) {
        for (int k = 0; k < TPS; k += 8) {
          src.memory().set(ValueLayout.JAVA_LONG, offsets[i] + k, offsets[i] * 31 + k + i + 1);
        }
      }
      Path f = tmp.resolve("ram.bin");
      try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
          MigrationOutput out = new MigrationOutput(ch)) {
        RamRecordWriter w = new RamRecordWriter(out);
        w.writeBlockList(List.of(src), false);
        for (int round = 0; round < 2; round++) { // twice: every slot's view changes window
          for (long off : offsets) {
            w.writePage(src, off);
          }
        }
        w.writeEos();
      }
      byte[] bytes = Files.readAllBytes(f);
      FragmentingChannel in = FragmentingChannel.randomShortReads(bytes, 7, 6000);
      RamLoader loader = new RamLoader(RamBlockResolver.of(List.of(dst)), RamLoadOptions.defaults());
      loader.loadChunk(new MigrationInput(in.scattering()));
      for (long off : offsets) {
        assertThat(pageMismatch(src, dst, off)).as("page at 0x%x", off).isEqualTo(-1L);
      }
      assertThat(loader.stats().normalPages()).isEqualTo(2L * offsets.length);
    }
  }

  private static long pageMismatch(RamBlock a, RamBlock b, long off) {
    return java.lang.foreign.MemorySegment.mismatch(a.memory(), off, off + TPS, b.memory(), off, off + TPS);
  }
}
