package dev.ferry.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ScatteringByteChannel;
import java.util.Random;

/**
 * A channel over bytes that hands them out in small pieces (okio's ONE_BYTE_AT_A_TIME, and a
 * seeded random short-read mode), to prove readers never assume a read fills the buffer. {@link
 * #scattering()} gives the same bytes, cut the same way, to readers that scatter (one read fills
 * several buffers in order, as a socket's does).
 */
public final class FragmentingChannel implements ReadableByteChannel {
  private final byte[] data;
  private final Random random;
  private final int maxChunk;
  private int pos;
  private boolean open = true;

  private FragmentingChannel(byte[] data, Random random, int maxChunk) {
    this.data = data;
    this.random = random;
    this.maxChunk = maxChunk;
  }

  /** Every read returns exactly one byte. */
  public static FragmentingChannel oneByteAtATime(byte[] data) {
    return new FragmentingChannel(data, null, 1);
  }

  /** Every read returns 1..maxChunk bytes, chosen by a seeded random. */
  public static FragmentingChannel randomShortReads(byte[] data, long seed, int maxChunk) {
    return new FragmentingChannel(data, new Random(seed), maxChunk);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (!open) {
      throw new java.nio.channels.ClosedChannelException();
    }
    if (pos >= data.length) {
      return -1;
    }
    int n = random == null ? maxChunk : 1 + random.nextInt(maxChunk);
    n = Math.min(n, Math.min(dst.remaining(), data.length - pos));
    dst.put(data, pos, n);
    pos += n;
    return n;
  }

  /** Reads that went to more than one buffer through {@link #scattering()} so far. */
  public int scatteredReads() {
    return scatteredReads;
  }

  private int scatteredReads;

  /** This channel as a {@link ScatteringByteChannel}: one read's 1..maxChunk bytes fill the buffers in order. */
  public ScatteringByteChannel scattering() {
    return new ScatteringByteChannel() {
      @Override
      public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        if (!open) {
          throw new java.nio.channels.ClosedChannelException();
        }
        if (pos >= data.length) {
          return -1;
        }
        int n = random == null ? maxChunk : 1 + random.nextInt(maxChunk);
        n = Math.min(n, data.length - pos);
        long total = 0;
        int used = 0;
        for (int i = offset; i < offset + length && n > 0; i++) {
          int k = Math.min(n, dsts[i].remaining());
          if (k > 0) {
            dsts[i].put(data, pos, k);
            pos += k;
            n -= k;
            total += k;
            used++;
          }
        }
        if (used > 1) {
          scatteredReads++;
        }
        return total;
      }

      @Override
      public long read(ByteBuffer[] dsts) throws IOException {
        return read(dsts, 0, dsts.length);
      }

      @Override
      public int read(ByteBuffer dst) throws IOException {
        return FragmentingChannel.this.read(dst);
      }

      @Override
      public boolean isOpen() {
        return open;
      }

      @Override
      public void close() {
        open = false;
      }
    };
  }

  /** Every read returns up to {@code chunk} bytes (a socket that delivers in fixed pieces). */
  public static FragmentingChannel chunks(byte[] data, int chunk) {
    return new FragmentingChannel(data, null, chunk);
  }

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public void close() {
    open = false;
  }
}
