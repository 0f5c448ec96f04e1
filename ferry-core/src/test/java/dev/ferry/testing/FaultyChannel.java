package dev.ferry.testing;

import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.Random;

/**
 * A {@link MigrationChannel} wrapper that injects one fault into one direction of the stream
 * (Lucene's MockDirectoryWrapper for transports), for the migration fault tests:
 *
 * <ul>
 *   <li>{@link Fault#FAIL}: the read or write that would cross byte {@code offset} delivers the bytes
 *       before it, and the next call throws an {@link IOException} ("injected fault"), as does
 *       every later one in that direction — a dropped connection;
 *   <li>{@link Fault#TRUNCATE}: reads see the end of the stream at {@code offset}; writes beyond it
 *       are swallowed (reported written, never sent), so the peer sees a short stream;
 *   <li>{@link Fault#FLIP}: the byte at {@code offset} arrives XORed with a non-zero mask.
 * </ul>
 *
 * {@link #random} picks the fault, the direction-agnostic offset below a bound and the mask from a
 * seed; {@link #toString()} says what was chosen so a failing test can print it next to the seed.
 * The other direction (the return path) passes through untouched.
 */
public final class FaultyChannel implements MigrationChannel {
  /** The kind of fault. */
  public enum Fault {
    FAIL,
    TRUNCATE,
    FLIP
  }

  /** Which direction the fault applies to. */
  public enum Direction {
    READ,
    WRITE
  }

  private final MigrationChannel inner;
  private final Fault fault;
  private final Direction direction;
  private final long offset;
  private final byte mask;
  /** Bytes passed so far in the faulty direction. */
  private long position;
  private boolean tripped;

  private FaultyChannel(
      MigrationChannel inner, Fault fault, Direction direction, long offset, int mask) {
    this.inner = Objects.requireNonNull(inner, "inner");
    this.fault = fault;
    this.direction = direction;
    if (offset < 0) {
      throw new IllegalArgumentException("negative offset " + offset);
    }
    if (fault == Fault.FLIP && (mask & 0xFF) == 0) {
      throw new IllegalArgumentException("a flip needs a non-zero mask");
    }
    this.offset = offset;
    this.mask = (byte) mask;
  }

  /** Fails the {@code direction} after {@code offset} bytes. */
  public static FaultyChannel failAfter(MigrationChannel inner, Direction direction, long offset) {
    return new FaultyChannel(inner, Fault.FAIL, direction, offset, 0);
  }

  /** Ends the {@code direction} at {@code offset} bytes. */
  public static FaultyChannel truncateAt(MigrationChannel inner, Direction direction, long offset) {
    return new FaultyChannel(inner, Fault.TRUNCATE, direction, offset, 0);
  }

  /** XORs byte {@code offset} of the {@code direction} with {@code mask} (non-zero). */
  public static FaultyChannel flip(
      MigrationChannel inner, Direction direction, long offset, int mask) {
    return new FaultyChannel(inner, Fault.FLIP, direction, offset, mask);
  }

  /** A fault, offset in {@code [0, maxOffset)} and mask all chosen by {@code seed}. */
  public static FaultyChannel random(
      MigrationChannel inner, Direction direction, long seed, long maxOffset) {
    if (maxOffset <= 0) {
      throw new IllegalArgumentException("maxOffset must be positive: " + maxOffset);
    }
    Random r = new Random(seed);
    Fault f = Fault.values()[r.nextInt(Fault.values().length)];
    long off = r.nextLong(maxOffset);
    int mask = 1 << r.nextInt(8);
    return new FaultyChannel(inner, f, direction, off, mask);
  }

  public Fault fault() {
    return fault;
  }

  public long offset() {
    return offset;
  }

  /** True once the fault took effect (the faulty direction reached {@code offset}). */
  public boolean tripped() {
    return tripped;
  }

  private IOException injected() {
    tripped = true;
    return new IOException("injected fault: connection dropped after " + offset + " bytes");
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (direction != Direction.READ) {
      return inner.read(dst);
    }
    if (fault != Fault.FLIP && position >= offset) {
      if (fault == Fault.FAIL) {
        throw injected();
      }
      tripped = true;
      return -1;
    }
    int limit = dst.limit();
    if (fault != Fault.FLIP) {
      dst.limit((int) Math.min(limit, dst.position() + (offset - position)));
    }
    int start = dst.position();
    int n;
    try {
      n = inner.read(dst);
    } finally {
      dst.limit(limit);
    }
    if (n > 0) {
      if (fault == Fault.FLIP && offset >= position && offset < position + n) {
        int i = start + (int) (offset - position);
        dst.put(i, (byte) (dst.get(i) ^ mask));
        tripped = true;
      }
      position += n;
    }
    return n;
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return (int) write(new ByteBuffer[] {src}, 0, 1);
  }

  @Override
  public long write(ByteBuffer[] srcs, int off, int len) throws IOException {
    if (direction != Direction.WRITE) {
      return inner.write(srcs, off, len);
    }
    long total = 0;
    for (int i = off; i < off + len; i++) {
      total += writeOne(srcs[i]);
    }
    return total;
  }

  private long writeOne(ByteBuffer src) throws IOException {
    long written = 0;
    while (src.hasRemaining()) {
      if (fault != Fault.FLIP && position >= offset) {
        if (fault == Fault.FAIL) {
          if (written > 0) {
            return written; // report the partial write; the next call fails
          }
          throw injected();
        }
        tripped = true;
        written += src.remaining(); // swallowed
        position += src.remaining();
        src.position(src.limit());
        return written;
      }
      int n = src.remaining();
      if (fault != Fault.FLIP) {
        n = (int) Math.min(n, offset - position);
      } else if (offset >= position && offset < position + n) {
        n = (int) (offset - position) + 1; // write up to and including the flipped byte
      }
      ByteBuffer piece = src.slice(src.position(), n);
      if (fault == Fault.FLIP && offset >= position && offset < position + n) {
        ByteBuffer copy = ByteBuffer.allocate(n).put(piece).flip();
        int i = (int) (offset - position);
        copy.put(i, (byte) (copy.get(i) ^ mask));
        int k = 0;
        while (copy.hasRemaining()) {
          k += inner.write(copy);
        }
        tripped = true;
        src.position(src.position() + k);
        position += k;
        written += k;
        continue;
      }
      int k = inner.write(piece);
      src.position(src.position() + k);
      position += k;
      written += k;
      if (k < n) {
        return written;
      }
    }
    return written;
  }

  @Override
  public boolean supportsReturnPath() {
    return inner.supportsReturnPath();
  }

  @Override
  public void shutdown() {
    inner.shutdown();
  }

  @Override
  public boolean isShutdown() {
    return inner.isShutdown();
  }

  @Override
  public String peerDescription() {
    return inner.peerDescription();
  }

  @Override
  public boolean isOpen() {
    return inner.isOpen();
  }

  @Override
  public void close() throws IOException {
    inner.close();
  }

  @Override
  public String toString() {
    return "FaultyChannel["
        + fault
        + " "
        + direction
        + " at "
        + offset
        + (fault == Fault.FLIP ? " mask 0x" + Integer.toHexString(mask & 0xFF) : "")
        + " over "
        + inner.peerDescription()
        + "]";
  }
}
