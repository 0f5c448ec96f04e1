package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testing.MemoryChannel;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.TransportListener;
import dev.ferry.transport.Transports;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ScatteringByteChannel;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plain gate hands on a channel that replays the bytes it peeked and still scatters: every byte
 * arrives once and in order, whatever the sizes of the buffers a scattering read is given.
 */
class PlainGateTest {
  private static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  @Test
  void aScatteringReadGetsThePeekedBytesThenTheRestOverANonScatteringChannel() throws IOException {
    System.out.println("PlainGateTest seed " + SEED);
    byte[] data = new byte[70_000];
    new Random(SEED).nextBytes(data);
    data[0] = 0x51; // not a TLS handshake
    MigrationChannel c = PlainGate.admit(new MemoryChannel(data, false));
    assertThat(c).isInstanceOf(ScatteringByteChannel.class);
    assertThat(drainScattering((ScatteringByteChannel) c, new Random(SEED + 1))).isEqualTo(data);
  }

  @Test
  void aScatteringReadOverAUnixSocketGetsEveryByteInOrder(@TempDir Path dir) throws Exception {
    System.out.println("PlainGateTest seed " + SEED);
    byte[] data = new byte[1 << 20];
    new Random(SEED).nextBytes(data);
    data[0] = 0x51;
    try (TransportListener l = Transports.listen("unix:" + dir.resolve("gate.sock"))) {
      Thread writer = Thread.ofPlatform().start(() -> {
        try (MigrationChannel out = Transports.connect(l.boundUri())) {
          ByteBuffer b = ByteBuffer.wrap(data);
          while (b.hasRemaining()) {
            out.write(b);
          }
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      try (MigrationChannel c = PlainGate.admit(l.accept())) {
        assertThat(c).isInstanceOf(ScatteringByteChannel.class);
        assertThat(drainScattering((ScatteringByteChannel) c, new Random(SEED + 2))).isEqualTo(data);
      }
      writer.join();
    }
  }

  /** Reads to the end with scattering reads into 1-3 buffers of 1 to 5000 bytes, some empty. */
  private static byte[] drainScattering(ScatteringByteChannel c, Random r) throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    while (true) {
      ByteBuffer[] bufs = new ByteBuffer[1 + r.nextInt(3)];
      for (int i = 0; i < bufs.length; i++) {
        bufs[i] = ByteBuffer.allocateDirect(r.nextInt(8) == 0 ? 0 : 1 + r.nextInt(5000));
      }
      long n = c.read(bufs, 0, bufs.length);
      if (n < 0) {
        return got.toByteArray();
      }
      long sum = 0;
      for (ByteBuffer b : bufs) {
        b.flip();
        sum += b.remaining();
        byte[] chunk = new byte[b.remaining()];
        b.get(chunk);
        got.write(chunk);
      }
      assertThat(sum).isEqualTo(n);
    }
  }
}
