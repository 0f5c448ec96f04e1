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
 * The raw-copy baselines for benchmarks: how fast {@code N} bytes cross a transport with nothing but
 * the copy (one sender thread, one receiver thread, chunks of {@value #CHUNK_BYTES} bytes). Two
 * kinds: {@link #measure(String, long)} sends one cache-resident buffer of random data into another
 * (the transport alone); {@link #measure(String, long, MemorySegment, MemorySegment)} reads the bytes
 * from one large region and writes them into another (the like-for-like baseline of a migration: the
 * source's guest RAM into the destination's). The end-to-end benchmark reports migration throughput
 * as a ratio against both, measured in the same run.
 *
 * <p>Only for transports where both ends live in this process: tcp, unix and socket-pair fds. The
 * clock starts before connect and stops when the receiver has read the last byte.
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

  /**
   * Copies {@code bytes} from a connecting sender to a listening receiver on {@code listenUri}, out of
   * and into one cache-resident {@value #CHUNK_BYTES}-byte buffer each (random data): the transport
   * alone, memory hardly touched.
   */
  public static Result measure(String listenUri, long bytes)
      throws IOException, InterruptedException {
    try (Arena arena = Arena.ofShared()) {
      MemorySegment in = arena.allocate(CHUNK_BYTES, 4096);
      MemorySegment out = arena.allocate(CHUNK_BYTES, 4096);
      byte[] noise = new byte[CHUNK_BYTES];
      ThreadLocalRandom.current().nextBytes(noise);
      MemorySegment.copy(MemorySegment.ofArray(noise), 0, out, 0, CHUNK_BYTES);
      return measure(listenUri, bytes, out, in);
    }
  }

  /**
   * Copies {@code bytes} read from {@code from} into {@code to} across the transport, in chunks of
   * {@value #CHUNK_BYTES} bytes, one thread each side: the like-for-like baseline of a migration,
   * when {@code from} is the source's guest RAM (touched) and {@code to} the destination's
   * (preallocated), so that both ends read and write as much memory as the migration does. A region
   * shorter than {@code bytes} is used again from its start (a migration's stream is a little longer
   * than the RAM it carries). Both regions must be readable and writable by other threads and at
   * least one chunk long, or the whole count when shorter; their content is overwritten ({@code to}).
   */
  public static Result measure(String listenUri, long bytes, MemorySegment from, MemorySegment to)
      throws IOException, InterruptedException {
    if (bytes < 0) {
      throw new IllegalArgumentException("negative byte count " + bytes);
    }
    if (from.byteSize() == 0 || to.byteSize() == 0) {
      throw new IllegalArgumentException("empty region");
    }
    try (TransportListener listener = Transports.listen(listenUri);
        ExecutorService pool = Executors.newFixedThreadPool(1)) {
      long start = System.nanoTime();
      Future<Long> receiver =
          pool.submit(
              () -> {
                long got = 0;
                try (MigrationChannel ch = listener.accept()) {
                  ByteBuffer b = null;
                  while (got < bytes) {
                    if (b == null || !b.hasRemaining()) {
                      b = chunk(to, got, bytes - got);
                    }
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
        long sent = 0;
        while (sent < bytes) {
          ByteBuffer b = chunk(from, sent, bytes - sent);
          while (b.hasRemaining()) {
            sent += ch.write(b);
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

  /** The next chunk of {@code region} for stream position {@code at} ({@code left} bytes still to go). */
  private static ByteBuffer chunk(MemorySegment region, long at, long left) {
    long offset = at % region.byteSize();
    long n = Math.min(Math.min(CHUNK_BYTES, left), region.byteSize() - offset);
    return region.asSlice(offset, n).asByteBuffer();
  }
}
