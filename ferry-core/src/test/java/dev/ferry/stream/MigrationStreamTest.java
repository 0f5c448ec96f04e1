package dev.ferry.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

class MigrationStreamTest {

  /** Writes a mix of primitives and pages, the way sections and RAM records interleave. */
  private static byte[] sample(int pages) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (Arena arena = Arena.ofConfined();
        MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes))) {
      out.writeBe32(StreamHeader.MAGIC).writeBe32(StreamHeader.VERSION);
      out.writeU8(0xFE).writeBe16(0xBEEF).writeBe64(-2L).writeCountedString("pc.ram");
      MemorySegment page = arena.allocate(4096, 4096);
      for (int p = 0; p < pages; p++) {
        page.fill((byte) p);
        out.writeBe64(((long) p << 12) | RamFlag.PAGE.code());
        out.writeBytes(page.asByteBuffer()); // copied: page content changes below
      }
      out.writeDouble(1.5);
      out.writeZeros(3);
      assertThat(out.position()).isEqualTo(8 + 1 + 2 + 8 + 7 + pages * (8 + 4096) + 8 + 3);
    }
    return bytes.toByteArray();
  }

  private static void check(ReadableByteChannel ch, int pages) throws IOException {
    MigrationInput in = new MigrationInput(ch);
    assertThat(in.readBe32()).isEqualTo(StreamHeader.MAGIC);
    assertThat(in.readBe32()).isEqualTo(3);
    assertThat(in.readU8()).isEqualTo(0xFE);
    assertThat(in.readBe16()).isEqualTo(0xBEEF);
    assertThat(in.readBe64()).isEqualTo(-2L);
    assertThat(in.peekU8(0)).isEqualTo(6);
    assertThat(in.readCountedString()).isEqualTo("pc.ram");
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment page = arena.allocate(4096, 4096);
      for (int p = 0; p < pages; p++) {
        assertThat(in.readBe64()).isEqualTo(((long) p << 12) | 8);
        in.readFully(page);
        assertThat(page.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) p);
        assertThat(page.get(ValueLayout.JAVA_BYTE, 4095)).isEqualTo((byte) p);
      }
    }
    assertThat(in.readDouble()).isEqualTo(1.5);
    in.skip(3);
    assertThat(in.atEnd()).isTrue();
    assertThatThrownBy(in::readU8).isInstanceOf(TruncatedStreamException.class);
  }

  static Stream<Arguments> readers() {
    Function<byte[], ReadableByteChannel> whole =
        b -> Channels.newChannel(new java.io.ByteArrayInputStream(b));
    Function<byte[], ReadableByteChannel> oneByte = FragmentingChannel::oneByteAtATime;
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    System.out.println("MigrationStreamTest seed " + seed);
    Function<byte[], ReadableByteChannel> shortReads =
        b -> FragmentingChannel.randomShortReads(b, seed, 5000);
    return Stream.of(
        Arguments.of("whole", whole), Arguments.of("one byte", oneByte), Arguments.of("short", shortReads));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("readers")
  void roundTripOverAnyFragmentation(String name, Function<byte[], ReadableByteChannel> ch)
      throws IOException {
    byte[] data = sample(20);
    check(ch.apply(data), 20);
  }

  @Test
  void pagesAreQueuedByReferenceAndGathered() throws IOException {
    java.nio.file.Path f = java.nio.file.Files.createTempFile("ferry-stream", ".bin");
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ram = arena.allocate(4096L * 100, 4096);
      for (int p = 0; p < 100; p++) {
        ram.asSlice(p * 4096L, 4096).fill((byte) (p + 1));
      }
      try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE);
          MigrationOutput out = new MigrationOutput(ch)) {
        for (int p = 0; p < 100; p++) {
          out.writeBe32(p);
          out.writePage(ram.asSlice(p * 4096L, 4096));
        }
        assertThat(out.position()).isEqualTo(100 * 4100L);
      }
      byte[] back = java.nio.file.Files.readAllBytes(f);
      assertThat(back).hasSize(100 * 4100);
      for (int p = 0; p < 100; p++) {
        int at = p * 4100;
        assertThat(HexFormat.of().formatHex(back, at, at + 4)).isEqualTo(String.format("%08x", p));
        byte[] pageBytes = Arrays.copyOfRange(back, at + 4, at + 4100);
        byte[] want = new byte[4096];
        Arrays.fill(want, (byte) (p + 1));
        assertThat(pageBytes).isEqualTo(want);
      }
    } finally {
      java.nio.file.Files.deleteIfExists(f);
    }
  }

  @Test
  void truncationNamesOffsetAndSticks() throws IOException {
    MigrationInput in = MigrationInput.of(new byte[] {1, 2, 3});
    in.readU8();
    assertThatThrownBy(in::readBe32)
        .isInstanceOf(TruncatedStreamException.class)
        .hasMessageContaining("offset 1");
    IOException first = in.error();
    assertThatThrownBy(in::readU8).isSameAs(first);
  }

  @Test
  void constantsRoundTripTheirCodes() {
    for (SectionType t : SectionType.values()) {
      assertThat(SectionType.fromCode(t.code())).isSameAs(t);
    }
    for (Command c : Command.values()) {
      assertThat(Command.fromCode(c.code())).isSameAs(c);
    }
    assertThat(Command.fromCodeOrNull(0)).isNull();
    assertThat(Command.fromCodeOrNull(11)).isNull();
    assertThat(ReturnPathMessage.fromCodeOrNull(7)).isNull();
    assertThat(RamFlag.describe(0x22)).isEqualTo("ZERO|CONTINUE");
    assertThat(RamFlag.describe(0x1000)).isEqualTo("0x1000");
  }
}
