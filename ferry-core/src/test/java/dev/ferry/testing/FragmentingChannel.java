package dev.ferry.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Random;

/**
 * A channel over bytes that hands them out in small pieces (okio's ONE_BYTE_AT_A_TIME, and a
 * seeded random short-read mode), to prove readers never assume a read fills the buffer.
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

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public void close() {
    open = false;
  }
}
