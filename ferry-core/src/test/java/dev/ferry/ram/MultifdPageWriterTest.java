package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.testing.FragmentingChannel;
import dev.ferry.testing.MemoryChannel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Round trips of the multifd sending side through the reader that decodes QEMU 7.2's captures. */
@Timeout(60)
class MultifdPageWriterTest {
  /** Pages of every kind: random (incompressible), one qword per page, text-like, zero. */
  private static void fill(MemorySegment m, long seed) {
    Random r = new Random(seed);
    long pages = m.byteSize() / 4096;
    for (long p = 0; p < pages; p++) {
      long base = p * 4096;
      switch ((int) (p % 4)) {
        case 0 -> {
          for (long i = 0; i < 4096; i += 8) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, base + i, r.nextLong());
          }
        }
        case 1 -> m.set(ValueLayout.JAVA_LONG_UNALIGNED, base + 8 * (p % 512), p * 0x9E3779B97F4A7C15L);
        case 2 -> {
          for (long i = 0; i < 4096; i++) {
            m.set(ValueLayout.JAVA_BYTE, base + i, (byte) ('a' + (i * 7 + p) % 26));
          }
        }
        default -> {}
      }
    }
  }

  @ParameterizedTest
  @EnumSource(MultifdCompression.class)
  void packetsDecodeToTheSameRamAcrossTheWholeChannel(MultifdCompression method) throws IOException {
    long seed = Long.getLong("ferry.seed", 7);
    long size = 2L << 20; // 512 pages
    try (RamBlock src = RamBlock.allocate("pc.ram", size);
        RamBlock other = RamBlock.allocate("pc.bios", 1 << 16);
        RamBlock dst = RamBlock.allocate("pc.ram", size);
        RamBlock dstOther = RamBlock.allocate("pc.bios", 1 << 16);
        MultifdPageWriter w = new MultifdPageWriter(method, 1)) {
      fill(src.memory(), seed);
      fill(other.memory(), seed + 1);
      MemoryChannel sink = MemoryChannel.sink();
      byte[] uuid = new byte[16];
      uuid[3] = 9;
      w.writeInit(sink, uuid, 1);
      long num = 0;
      long[] offsets = new long[MultifdPacket.PAGE_COUNT];
      w.writePacket(sink, true, num++, null, offsets, 0); // the setup SYNC
      // full packets of pages in a shuffled order, a short one, a SYNC riding on a page packet
      int pages = (int) (size / 4096);
      int[] order = new Random(seed).ints(0, pages).distinct().limit(pages).toArray();
      int k = 0;
      while (k < pages) {
        int n = Math.min(MultifdPacket.PAGE_COUNT, pages - k == 300 ? 44 : pages - k);
        for (int i = 0; i < n; i++) {
          offsets[i] = order[k + i] * 4096L;
        }
        k += n;
        w.writePacket(sink, k == pages, num++, src, offsets, n);
      }
      for (int i = 0; i < 16; i++) {
        offsets[i] = i * 4096L;
      }
      w.writePacket(sink, false, num++, other, offsets, 16);
      w.writePacket(sink, true, num++, null, offsets, 0);
      byte[] wire = sink.written();
      assertThat(w.wireBytes()).isEqualTo(wire.length);
      long packets = num;
      assertThat(w.multifdBytes()).isEqualTo(packets * MultifdPacket.LENGTH + (pages + 16) * 4096L);

      MigrationInput in = new MigrationInput(FragmentingChannel.randomShortReads(wire, seed, 3000));
      RamBlockResolver res = RamBlockResolver.of(List.of(dst, dstOther));
      try (MultifdPageReader r = new MultifdPageReader(1, method)) {
        MultifdInit init = MultifdInit.read(in);
        assertThat(init.id()).isEqualTo(1);
        assertThat(init.sameUuid(uuid)).isTrue();
        MultifdPacket p = new MultifdPacket();
        int syncs = 0;
        int read = 0;
        while (p.read(in)) {
          r.readPages(p, in, res);
          syncs += p.sync() ? 1 : 0;
          read++;
        }
        assertThat(read).isEqualTo(packets);
        assertThat(syncs).isEqualTo(3);
        assertThat(r.pages()).isEqualTo(pages + 16);
      }
      assertThat(dst.memory().mismatch(src.memory())).as("seed %d", seed).isEqualTo(-1);
      assertThat(dstOther.memory().asSlice(0, 16 * 4096).mismatch(other.memory().asSlice(0, 16 * 4096))).isEqualTo(-1);
      if (method != MultifdCompression.NONE) {
        assertThat((long) wire.length).isLessThan(w.multifdBytes()); // 3 of 4 pages compress
      }
    }
  }
}
