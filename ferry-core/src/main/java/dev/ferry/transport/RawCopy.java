package dev.ferry.transport;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The raw-copy baseline for benchmarks: how fast {@code N} bytes cross a transport with nothing but
 * the copy (one sender thread, one receiver thread, page-aligned direct buffers of {@value
 * #CHUNK_BYTES} bytes of random data). The end-to-end benchmark reports migration throughput as a
 * ratio against this, measured in the same run.
 *
 * <p>Only for transports where both ends live in this process: tcp, unix and socket-pair fds. The
 * clock starts before connect and stops when the receiver has read the last byte.
 *
 * <pre>{@code java -cp ... dev.ferry.transport.RawCopy tcp:127.0.0.1:0 1G [runs]}</pre>
 */
public final class RawCopy {
  static final int CHUNK_BYTES = 1 << 20;

  /** One measurement. */
  public record Result(String uri, long bytes, long elapsedNs) {
    public double bytesPerSec() {
      return bytes * 1e9 / elapsedNs;
    }

    @Override
    public String toString() {
      return String.format(
          Locale.ROOT,
          "%s: %d bytes in %.1f ms = %.2f GB/s",
          uri,
          bytes,
          elapsedNs / 1e6,
          bytesPerSec() / 1e9);
    }
  }

  private RawCopy() {}

  /** Copies {@code bytes} from a connecting sender to a listening receiver on {@code listenUri}. */
  public static Result measure(String listenUri, long bytes)
      throws IOException, InterruptedException {
    if (bytes < 0) {
      throw new IllegalArgumentException("negative byte count " + bytes);
    }
    try (TransportListener listener = Transports.listen(listenUri);
        ExecutorService pool = Executors.newFixedThreadPool(1);
        Arena arena = Arena.ofShared()) {
      MemorySegment in = arena.allocate(CHUNK_BYTES, 4096);
      MemorySegment out = arena.allocate(CHUNK_BYTES, 4096);
      byte[] noise = new byte[CHUNK_BYTES];
      ThreadLocalRandom.current().nextBytes(noise);
      MemorySegment.copy(MemorySegment.ofArray(noise), 0, out, 0, CHUNK_BYTES);
      long start = System.nanoTime();
      Future<Long> receiver =
          pool.submit(
              () -> {
                long got = 0;
                try (MigrationChannel ch = listener.accept()) {
                  ByteBuffer b = in.asByteBuffer();
                  while (got < bytes) {
                    b.clear();
                    int n = ch.read(b);
                    if (n < 0) {
                      throw new IOException("stream ended after " + got + " of " + bytes + " bytes");
                    }
                    got += n;
                  }
                }
                return System.nanoTime();
              });
      try (MigrationChannel ch = Transports.connect(listener.boundUri())) {
        ByteBuffer b = out.asByteBuffer();
        long left = bytes;
        while (left > 0) {
          b.clear().limit((int) Math.min(left, CHUNK_BYTES));
          while (b.hasRemaining()) {
            left -= ch.write(b);
          }
        }
      }
      long end;
      try {
        end = receiver.get();
      } catch (ExecutionException e) {
        throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
      }
      return new Result(listener.boundUri().text(), bytes, end - start);
    }
  }
}
