package dev.ferry.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The per-page paths that allocate nothing: {@link MigrationInput#readFully(MemorySegment, long,
 * int)} (the buffered part copied, the rest read straight into the page by a scattering read that
 * refills the buffer behind it) over any fragmentation, a header split from its body, a body cut
 * short; and {@link MigrationOutput#writePage(MemorySegment, long, int)}'s reused views, gathering
 * or not.
 */
class PageViewsTest {
  private static final int TPS = StreamHeader.TARGET_PAGE_SIZE;
  private static final long SEED = Long.getLong("ferry.seed", 12);
  private static final long TRAILER = 0x5452_4149_4c45_5221L;

  @TempDir Path tmp;

  /** {@code pages} records: be64 header (page index << 12 | PAGE), 4 KiB of seeded bytes; then a trailer. */
  private static byte[] stream(int pages, byte[] bodies) {
    ByteBuffer b = ByteBuffer.allocate(pages * (8 + TPS) + 8);
    for (int p = 0; p < pages; p++) {
      b.putLong(((long) p << 12) | RamFlag.PAGE.code());
      b.put(bodies, p * TPS, TPS);
    }
    b.putLong(TRAILER);
    return b.array();
  }

  private static byte[] bodies(int pages, long seed) {
    byte[] b = new byte[pages * TPS];
    new Random(seed).nextBytes(b);
    return b;
  }

  static Stream<Arguments> channels() {
    System.out.println("PageViewsTest seed " + SEED);
    return Stream.of(
        Arguments.of("whole reads, scattering", (Function<FragmentingChannel, ReadableByteChannel>) FragmentingChannel::scattering, Integer.MAX_VALUE),
        Arguments.of("one byte at a time, scattering", (Function<FragmentingChannel, ReadableByteChannel>) FragmentingChannel::scattering, 1),
        Arguments.of("header apart from its body, scattering", (Function<FragmentingChannel, ReadableByteChannel>) FragmentingChannel::scattering, 8),
        Arguments.of("random short reads, scattering", (Function<FragmentingChannel, ReadableByteChannel>) FragmentingChannel::scattering, -9000),
        Arguments.of("random short reads, not scattering", (Function<FragmentingChannel, ReadableByteChannel>) c -> c, -9000),
        Arguments.of("whole reads, not scattering", (Function<FragmentingChannel, ReadableByteChannel>) c -> c, Integer.MAX_VALUE));
  }

  private static FragmentingChannel source(byte[] data, int chunk) {
    return chunk < 0 ? FragmentingChannel.randomShortReads(data, SEED, -chunk) : FragmentingChannel.chunks(data, chunk);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("channels")
  void pageBodiesLandInRamOverAnyFragmentation(String name, Function<FragmentingChannel, ReadableByteChannel> as, int chunk)
      throws IOException {
    int pages = 150; // more than two 256 KiB buffers: bodies straddle the buffer's end
    byte[] bodies = bodies(pages, SEED);
    byte[] data = stream(pages, bodies);
    FragmentingChannel src = source(data, chunk);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ram = arena.allocate((long) pages * TPS, TPS);
      MigrationInput in = new MigrationInput(as.apply(src));
      // backwards through RAM, so a page's place in RAM is not its place in the stream
      for (int p = 0; p < pages; p++) {
        assertThat(in.readBe64()).isEqualTo(((long) p << 12) | RamFlag.PAGE.code());
        in.readFully(ram, (long) (pages - 1 - p) * TPS, TPS);
        assertThat(in.position()).isEqualTo((long) (p + 1) * (8 + TPS));
      }
      assertThat(in.readBe64()).isEqualTo(TRAILER);
      assertThat(in.atEnd()).isTrue();
      for (int p = 0; p < pages; p++) {
        MemorySegment want = MemorySegment.ofArray(bodies).asSlice((long) p * TPS, TPS);
        assertThat(MemorySegment.mismatch(ram, (long) (pages - 1 - p) * TPS, (long) (pages - p) * TPS, want, 0, TPS))
            .as("page %d", p)
            .isEqualTo(-1L);
      }
    }
    if (name.equals("whole reads, scattering")) {
      assertThat(src.scatteredReads()).as("a body read straight into RAM with the buffer behind it").isPositive();
    }
  }

  @Test
  void bodyCutShortIsATruncatedStreamThatSticks() throws IOException {
    byte[] data = stream(80, bodies(80, SEED));
    int cut = 70 * (8 + TPS) + 8 + 100; // 100 bytes into page 70's body, past the first buffer
    byte[] shortData = java.util.Arrays.copyOf(data, cut);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ram = arena.allocate(TPS, TPS);
      MigrationInput in = new MigrationInput(FragmentingChannel.chunks(shortData, Integer.MAX_VALUE).scattering());
      for (int p = 0; p < 70; p++) {
        in.readBe64();
        in.readFully(ram, 0, TPS);
      }
      in.readBe64();
      assertThatThrownBy(() -> in.readFully(ram, 0, TPS))
          .isInstanceOf(TruncatedStreamException.class)
          .satisfies(e -> assertThat(((MigrationStreamException) e).offset()).isEqualTo(cut));
      IOException first = in.error();
      assertThatThrownBy(in::readU8).isSameAs(first);
    }
  }

  @Test
  void pieceOutsideTheRegionIsRefused() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ram = arena.allocate(2 * TPS, TPS);
      MigrationInput in = MigrationInput.of(new byte[3 * TPS]);
      assertThatThrownBy(() -> in.readFully(ram, TPS + 1, TPS)).isInstanceOf(IndexOutOfBoundsException.class);
    }
  }

  /** Pieces from two regions in a seeded order, many times the gathering array: the bytes come out as queued. */
  @Test
  void reusedViewsQueueEachPieceItsOwnBytes() throws IOException {
    int pages = 64;
    byte[] a = bodies(pages, SEED);
    byte[] b = bodies(pages, SEED + 1);
    Random r = new Random(SEED);
    int pieces = 3 * MigrationOutput.MAX_IOV;
    int[] which = new int[pieces];
    for (int i = 0; i < pieces; i++) {
      which[i] = r.nextInt(2 * pages);
    }
    ByteArrayOutputStream want = new ByteArrayOutputStream();
    for (int i = 0; i < pieces; i++) {
      want.writeBytes(ByteBuffer.allocate(8).putLong(i).array());
      want.write(which[i] < pages ? a : b, (which[i] % pages) * TPS, TPS);
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ra = arena.allocate((long) pages * TPS, TPS).copyFrom(MemorySegment.ofArray(a));
      MemorySegment rb = arena.allocate((long) pages * TPS, TPS).copyFrom(MemorySegment.ofArray(b));
      Path f = tmp.resolve("gathered.bin");
      try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
          MigrationOutput out = new MigrationOutput(ch)) {
        write(out, which, pages, ra, rb);
        out.flush();
        assertThat(out.flushedPosition()).isEqualTo(out.position()).isEqualTo(want.size());
      }
      assertThat(Files.readAllBytes(f)).isEqualTo(want.toByteArray());
      ByteArrayOutputStream copied = new ByteArrayOutputStream();
      try (MigrationOutput out = new MigrationOutput(Channels.newChannel(copied))) {
        write(out, which, pages, ra, rb);
      }
      assertThat(copied.toByteArray()).isEqualTo(want.toByteArray());
    }
  }

  private static void write(MigrationOutput out, int[] which, int pages, MemorySegment ra, MemorySegment rb)
      throws IOException {
    for (int i = 0; i < which.length; i++) {
      out.writeBe64(i);
      out.writePage(which[i] < pages ? ra : rb, (long) (which[i] % pages) * TPS, TPS);
    }
  }
}
