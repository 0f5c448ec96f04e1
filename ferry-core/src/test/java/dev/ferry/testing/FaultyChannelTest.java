package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.TruncatedStreamException;
import dev.ferry.testing.FaultyChannel.Direction;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FaultyChannelTest {
  static final long SEED = Long.getLong("ferry.seed", System.nanoTime());
  static final int LEN = 200_000;

  private static byte[] data(long seed) {
    byte[] b = new byte[LEN];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void readFailAfterDeliversThePrefixThenThrows() throws IOException {
    byte[] d = data(1);
    FaultyChannel ch = FaultyChannel.failAfter(new MemoryChannel(d, false), Direction.READ, 1000);
    MigrationInput in = new MigrationInput(ch);
    byte[] got = new byte[1000];
    in.readFully(got, 0, 1000);
    assertThat(got).isEqualTo(Arrays.copyOf(d, 1000));
    assertThatThrownBy(in::readU8)
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("injected fault")
        .hasMessageContaining("offset 1000");
    assertThat(ch.tripped()).isTrue();
  }

  @Test
  void readTruncateIsAnEndOfStream() {
    FaultyChannel ch =
        FaultyChannel.truncateAt(new MemoryChannel(data(2), false), Direction.READ, 4321);
    MigrationInput in = new MigrationInput(ch);
    assertThatThrownBy(() -> in.readBytes(LEN))
        .isInstanceOf(TruncatedStreamException.class)
        .hasMessageContaining("offset 4321");
  }

  @Test
  void readFlipChangesExactlyOneByte() throws IOException {
    byte[] d = data(3);
    FaultyChannel ch = FaultyChannel.flip(new MemoryChannel(d, false), Direction.READ, 77_777, 0x10);
    byte[] got = new MigrationInput(ch).readBytes(LEN);
    assertThat(diff(d, got)).containsExactly(77_777);
    assertThat(got[77_777]).isEqualTo((byte) (d[77_777] ^ 0x10));
  }

  @Test
  void writeFaultsShapeWhatThePeerReceives() throws IOException {
    byte[] d = data(4);
    MemoryChannel sink = MemoryChannel.sink();
    MigrationOutput out = new MigrationOutput(FaultyChannel.truncateAt(sink, Direction.WRITE, 5000));
    out.writeBytes(d).flush();
    assertThat(sink.written()).isEqualTo(Arrays.copyOf(d, 5000));

    sink = MemoryChannel.sink();
    out = new MigrationOutput(FaultyChannel.flip(sink, Direction.WRITE, 123_456, 0x80));
    out.writeBytes(d).flush();
    assertThat(diff(d, sink.written())).containsExactly(123_456);

    sink = MemoryChannel.sink();
    MigrationOutput failing = new MigrationOutput(FaultyChannel.failAfter(sink, Direction.WRITE, 40_000));
    assertThatThrownBy(() -> failing.writeBytes(d).flush())
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("injected fault");
    assertThat(sink.written()).isEqualTo(Arrays.copyOf(d, 40_000));
  }

  @Test
  void theOtherDirectionPassesThrough() throws IOException {
    byte[] d = data(5);
    MemoryChannel inner = new MemoryChannel(d, true);
    FaultyChannel ch = FaultyChannel.failAfter(inner, Direction.WRITE, 0);
    assertThat(new MigrationInput(ch).readBytes(LEN)).isEqualTo(d);
    assertThat(ch.supportsReturnPath()).isTrue();
  }

  @Test
  void seededRandomFaultsAlwaysEndInAClearErrorOrAChangedByte() throws IOException {
    System.out.println("FaultyChannelTest seed " + SEED + " (-Dferry.seed=" + SEED + ")");
    Random seeds = new Random(SEED);
    for (int i = 0; i < 200; i++) {
      long seed = seeds.nextLong();
      byte[] d = data(seed);
      FaultyChannel ch =
          FaultyChannel.random(new MemoryChannel(d, false), Direction.READ, seed, LEN);
      MigrationInput in = new MigrationInput(ch);
      ByteBuffer got = ByteBuffer.allocate(LEN);
      try {
        while (got.hasRemaining()) {
          int n = Math.min(got.remaining(), 1 + (int) (seed >>> 40 & 0xFFFF));
          in.readFully(got.slice(got.position(), n));
          got.position(got.position() + n);
        }
        assertThat(ch.fault()).as("seed %d: %s", seed, ch).isEqualTo(FaultyChannel.Fault.FLIP);
        assertThat(diff(d, got.array())).as("seed %d", seed).containsExactly((int) ch.offset());
      } catch (MigrationStreamException e) {
        assertThat(ch.fault()).as("seed %d: %s", seed, ch).isNotEqualTo(FaultyChannel.Fault.FLIP);
        assertThat(e.offset()).as("seed %d: %s", seed, ch).isEqualTo(ch.offset());
      }
    }
  }

  private static int[] diff(byte[] a, byte[] b) {
    assertThat(b).hasSameSizeAs(a);
    return java.util.stream.IntStream.range(0, a.length).filter(i -> a[i] != b[i]).toArray();
  }
}
