package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.stream.TruncatedStreamException;
import dev.ferry.testing.FragmentingChannel;
import dev.ferry.testing.MemoryChannel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The receiver's fast path ({@link MultifdPageReader.ExactInput}): headers read exactly, raw pages
 * scattered straight into RAM by runs of adjacent pages, compressed runs decoded in one call; on
 * packets of the maximum page count whose runs and reads end anywhere (mid-page, mid-header), and
 * on a channel cut mid-packet.
 */
@Timeout(60)
class MultifdExactInputTest {
  private static final long SIZE = 4L << 20; // 1024 pages

  /** Random pages, one-qword pages and zero pages, so every codec has work and runs of each kind. */
  private static void fill(MemorySegment m, Random r) {
    for (long p = 0; p < m.byteSize() / 4096; p++) {
      long base = p * 4096;
      switch (r.nextInt(3)) {
        case 0 -> {
          for (long i = 0; i < 4096; i += 8) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, base + i, r.nextLong());
          }
        }
        case 1 -> m.set(ValueLayout.JAVA_LONG_UNALIGNED, base, p * 0x9E3779B97F4A7C15L | 1);
        default -> {}
      }
    }
  }

  /** What the writer sent, and how many packets and pages it holds. */
  private record Wire(byte[] bytes, int packets, int pages) {}

  /**
   * Every page of {@code src} once, in packets of the maximum page count (the last one short): each
   * packet is runs of 1 to 40 adjacent pages from random places, so runs start and end anywhere;
   * packets staged by the writer several to a write.
   */
  private static Wire write(RamBlock src, MultifdCompression method, Random r) throws IOException {
    int pages = (int) (src.usedLength() / 4096);
    // runs of adjacent pages in a shuffled order of run starts
    int[] order = new int[pages];
    int k = 0;
    List<int[]> runs = new java.util.ArrayList<>();
    for (int p = 0; p < pages; ) {
      int len = Math.min(1 + r.nextInt(40), pages - p);
      runs.add(new int[] {p, len});
      p += len;
    }
    java.util.Collections.shuffle(runs, r);
    for (int[] run : runs) {
      for (int i = 0; i < run[1]; i++) {
        order[k++] = run[0] + i;
      }
    }
    MemoryChannel sink = MemoryChannel.sink();
    int packets = 0;
    try (MultifdPageWriter w = new MultifdPageWriter(method, 1)) {
      w.writeInit(sink, new byte[16], 0);
      long[] offsets = new long[MultifdPacket.PAGE_COUNT];
      w.writePacket(sink, true, packets++, null, offsets, 0);
      for (int at = 0; at < pages; at += MultifdPacket.PAGE_COUNT) {
        int n = Math.min(MultifdPacket.PAGE_COUNT, pages - at);
        for (int i = 0; i < n; i++) {
          offsets[i] = order[at + i] * 4096L;
        }
        // as a channel thread: several packets staged for one gathering write, or one alone
        if (!w.canStage()) {
          w.flush(sink);
        }
        w.stagePacket(false, packets++, src, offsets, n);
        if (r.nextInt(3) == 0) {
          w.flush(sink);
        }
      }
      if (!w.canStage()) {
        w.flush(sink);
      }
      w.stagePacket(true, packets++, null, offsets, 0);
      w.flush(sink);
    }
    return new Wire(sink.written(), packets, pages);
  }

  /** Reads a whole channel through the exact path; returns the packets read. */
  private static int readExact(ReadableByteChannel ch, MultifdCompression method, RamBlock dst) throws IOException {
    MultifdPageReader.ExactInput in = new MultifdPageReader.ExactInput(ch, 0);
    ByteBuffer init = ByteBuffer.allocate(MultifdInit.LENGTH);
    in.readFully(init);
    assertThat(MultifdInit.read(MigrationInput.of(init.array())).id()).isZero();
    int packets = 0;
    try (MultifdPageReader r = new MultifdPageReader(0, method)) {
      MultifdPacket p = new MultifdPacket();
      while (in.readHeader(p)) {
        r.readPages(p, in, RamBlockResolver.of(List.of(dst)));
        packets++;
      }
    }
    return packets;
  }

  @ParameterizedTest
  @EnumSource(MultifdCompression.class)
  void fullPacketsWhoseReadsEndMidPageLandExactly(MultifdCompression method) throws IOException {
    long seed = Long.getLong("ferry.seed", new Random().nextLong());
    System.out.println("MultifdExactInputTest seed " + seed);
    Random r = new Random(seed);
    try (RamBlock src = RamBlock.allocate("pc.ram", SIZE);
        RamBlock scattered = RamBlock.allocate("pc.ram", SIZE);
        RamBlock plain = RamBlock.allocate("pc.ram", SIZE);
        RamBlock buffered = RamBlock.allocate("pc.ram", SIZE)) {
      fill(src.memory(), r);
      Wire wire = write(src, method, r);
      assertThat(wire.pages() / MultifdPacket.PAGE_COUNT).as("full packets").isEqualTo(8);
      // a scattering channel whose reads stop anywhere: mid-page, mid-run, mid-header
      FragmentingChannel frag = FragmentingChannel.randomShortReads(wire.bytes(), seed, 70_000);
      assertThat(readExact(frag.scattering(), method, scattered)).isEqualTo(wire.packets());
      if (method == MultifdCompression.NONE) {
        assertThat(frag.scatteredReads()).as("reads spanning several runs").isPositive();
      }
      // a channel that reads one buffer at a time (e.g. TLS)
      assertThat(readExact(FragmentingChannel.randomShortReads(wire.bytes(), seed + 1, 5000), method, plain))
          .isEqualTo(wire.packets());
      // the analyzer's buffered path: runs cross the edges of its read buffer
      MigrationInput in = new MigrationInput(FragmentingChannel.randomShortReads(wire.bytes(), seed + 2, 300_000));
      MultifdInit.read(in);
      try (MultifdPageReader reader = new MultifdPageReader(0, method)) {
        MultifdPacket p = new MultifdPacket();
        while (p.read(in)) {
          reader.readPages(p, in, RamBlockResolver.of(List.of(buffered)));
        }
        assertThat(reader.pages()).isEqualTo(wire.pages());
      }
      for (RamBlock dst : List.of(scattered, plain, buffered)) {
        assertThat(dst.memory().mismatch(src.memory())).as("seed %d", seed).isEqualTo(-1);
      }
    }
  }

  @Test
  void aChannelCutMidPacketFailsInOneLineWithTheOffset() throws IOException {
    try (RamBlock src = RamBlock.allocate("pc.ram", SIZE);
        RamBlock dst = RamBlock.allocate("pc.ram", SIZE)) {
      fill(src.memory(), new Random(3));
      Wire wire = write(src, MultifdCompression.NONE, new Random(3));
      // init, the SYNC, the first packet's header and 5000 bytes of its pages
      int cut = MultifdInit.LENGTH + 2 * MultifdPacket.LENGTH + 5000;
      byte[] part = Arrays.copyOf(wire.bytes(), cut);
      assertThatThrownBy(() -> readExact(FragmentingChannel.randomShortReads(part, 1, 3000).scattering(),
              MultifdCompression.NONE, dst))
          .isInstanceOf(TruncatedStreamException.class)
          .hasMessageContaining("unexpected end of stream: needed " + (MultifdPacket.PACKET_SIZE - 5000) + " more bytes")
          .hasMessageContaining("offset " + cut)
          .hasMessageNotContaining("\n");
    }
  }

  @Test
  void aChannelCutMidHeaderIsAnErrorButOneCutAtAHeaderBoundaryIsTheEnd() throws IOException {
    try (RamBlock src = RamBlock.allocate("pc.ram", SIZE);
        RamBlock dst = RamBlock.allocate("pc.ram", SIZE)) {
      Wire wire = write(src, MultifdCompression.ZSTD, new Random(4));
      int atBoundary = MultifdInit.LENGTH + MultifdPacket.LENGTH;
      assertThat(readExact(FragmentingChannel.randomShortReads(Arrays.copyOf(wire.bytes(), atBoundary), 1, 100),
          MultifdCompression.ZSTD, dst)).isEqualTo(1);
      assertThatThrownBy(() -> readExact(
              FragmentingChannel.randomShortReads(Arrays.copyOf(wire.bytes(), atBoundary + 100), 1, 100),
              MultifdCompression.ZSTD, dst))
          .isInstanceOf(TruncatedStreamException.class)
          .hasMessageContaining("needed " + (MultifdPacket.LENGTH - 100) + " more bytes");
    }
  }
}
