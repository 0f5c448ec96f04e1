package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.RamBlock;
import dev.ferry.ram.ReceivedPages;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The return path's recovery messages (RECV_BITMAP with its blob, RESUME_ACK) as QEMU 7.2 frames
 * them: golden bytes, round trip through {@link ReceivedPages}, fragmented input, corruption. The
 * real QEMU capture of a recovery's return path is decoded in ferry-cli's PostcopyAnalyzeTest.
 */
class ReturnPathRecoveryTest {
  /** QEMU's bytes for block 'pc.ram' with pages 0-7, 8, 9 and 63 received (a 64-page block). */
  static final byte[] GOLDEN = {
    0, 5, 0, 7, 6, 'p', 'c', '.', 'r', 'a', 'm', // RECV_BITMAP, len 7, name
    0, 0, 0, 0, 0, 0, 0, 8, // be64 size 8
    (byte) 0xff, 3, 0, 0, 0, 0, 0, (byte) 0x80, // bit i = byte i/8 bit i%8
    1, 0x23, 0x45, 0x67, (byte) 0x89, (byte) 0xAB, (byte) 0xCD, (byte) 0xEF, // end mark
    0, 6, 0, 4, 0, 0, 0, 1 // RESUME_ACK 1
  };

  record Got(List<String> blocks, List<byte[]> bitmaps, List<Long> acks) {}

  static Got read(MigrationInput in, long expectedBytes) throws IOException {
    Got g = new Got(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
    ReturnPath.Reader r = new ReturnPath.Reader(in, new ReturnPath.Handler() {
      @Override
      public void shut(long status) {}

      @Override
      public long receivedBitmapBytes(String blockName) {
        return blockName.equals("pc.ram") ? expectedBytes : -1;
      }

      @Override
      public void receivedBitmap(String blockName, byte[] bitmap) {
        g.blocks().add(blockName);
        g.bitmaps().add(bitmap);
      }

      @Override
      public void resumeAck(long value) {
        g.acks().add(value);
      }
    });
    r.readOne();
    r.readOne();
    return g;
  }

  @Test
  void writerProducesQemusBytesFromTheReceivedBitmap() throws IOException {
    RamBlock b = RamBlock.allocate("pc.ram", 64 * 4096);
    try {
      ReceivedPages received = new ReceivedPages(List.of(b));
      received.markReceived(0, 0, 10);
      received.markReceived(0, 63, 1);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes))) {
        ReturnPath.Writer w = new ReturnPath.Writer(out);
        w.receivedBitmap("pc.ram", received.toLittleEndianBytes(0));
        w.resumeAck(1);
      }
      assertThat(bytes.toByteArray()).isEqualTo(GOLDEN);
    } finally {
      b.close();
    }
  }

  @Test
  void readerDecodesGoldenWholeAndOneByteAtATime() throws IOException {
    for (MigrationInput in : List.of(
        MigrationInput.of(GOLDEN), new MigrationInput(FragmentingChannel.oneByteAtATime(GOLDEN)),
        new MigrationInput(FragmentingChannel.randomShortReads(GOLDEN, 7, 5)))) {
      Got g = read(in, 8);
      assertThat(g.blocks()).containsExactly("pc.ram");
      assertThat(g.bitmaps().getFirst()).containsExactly(0xff, 3, 0, 0, 0, 0, 0, 0x80);
      assertThat(g.acks()).containsExactly(1L);
    }
  }

  @Test
  void corruptionIsAClearError() {
    byte[] size = GOLDEN.clone();
    size[18] = 16; // 16 bytes where the source expects 8
    assertThatThrownBy(() -> read(MigrationInput.of(size), 8))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("RECV_BITMAP of block 'pc.ram' has size 16, expected 8");
    byte[] mark = GOLDEN.clone();
    mark[34] = 0; // end mark 0x...CD00
    assertThatThrownBy(() -> read(MigrationInput.of(mark), 8))
        .hasMessageContaining("ends with 0x0123456789abcd00, expected 0x0123456789ABCDEF");
    byte[] name = GOLDEN.clone();
    name[5] = 'P';
    assertThatThrownBy(() -> read(MigrationInput.of(name), 8)).hasMessageContaining("RECV_BITMAP for unknown RAM block 'Pc.ram'");
    byte[] len = GOLDEN.clone();
    len[3] = 9;
    assertThatThrownBy(() -> read(MigrationInput.of(len), 8)).hasMessageContaining("does not match 1 + name length 6");
    for (int cut : new int[] {3, 11, 15, 25, 33}) {
      assertThatThrownBy(() -> read(MigrationInput.of(Arrays.copyOf(GOLDEN, cut)), 8))
          .as("cut at %d", cut)
          .hasMessageContaining("unexpected end of stream");
    }
  }
}
