package dev.ferry.bench;

import dev.ferry.machine.GuestPrograms;
import dev.ferry.ram.MultifdPageReader;
import dev.ferry.ram.MultifdPageWriter;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdPacket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One multifd channel's codec, the CPU a channel thread spends per byte of RAM, on a 64 MiB block
 * holding the {@code fill} guest's pages (xorshift, incompressible) or the {@code workingset} guest's
 * (one non-zero qword per page): {@link #encode} writes every page in 128-page packets in QEMU 7.2's
 * format to a channel that discards them, {@link #decode} places a recorded channel back into RAM,
 * against the same-run baseline {@link #copy} of the same bytes (memory-copy speed). GB/s = 64 ×
 * 1.048576 / 1000 / (seconds per op). N channels multiply this only as far as cores allow.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", "--enable-native-access=ALL-UNNAMED"})
public class MultifdCodecBench {
  private static final long SIZE = 64L << 20;

  @Param({"none", "zstd", "zlib"})
  public String compression;

  @Param({"fill", "workingset"})
  public String content;

  RamBlock src;
  RamBlock dst;
  MultifdCompression method;
  byte[] recorded;
  final long[] offsets = new long[MultifdPacket.PAGE_COUNT];

  /** Keeps what a channel would carry. */
  static final class Record extends DiscardChannel {
    final ByteArrayOutputStream out = new ByteArrayOutputStream();

    @Override
    public int write(ByteBuffer b) {
      byte[] a = new byte[b.remaining()];
      b.get(a);
      out.writeBytes(a);
      return a.length;
    }
  }

  @Setup(Level.Trial)
  public void setup() throws IOException {
    method = MultifdCompression.fromQmpName(compression);
    src = RamBlock.allocate("pc.ram", SIZE);
    dst = RamBlock.allocate("pc.ram", SIZE);
    MemorySegment m = src.memory();
    if (content.equals("fill")) {
      DigestBench.fillXorshift(m);
    } else {
      for (long page = 0; page < SIZE / 4096; page++) {
        m.set(ValueLayout.JAVA_LONG, page * 4096, GuestPrograms.workingSetFill(page));
      }
    }
    Record r = new Record();
    sendAll(r);
    recorded = r.out.toByteArray();
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    src.close();
    dst.close();
  }

  private long sendAll(GatheringByteChannel out) throws IOException {
    try (MultifdPageWriter w = new MultifdPageWriter(method, 1)) {
      long num = 0;
      for (long page = 0; page < SIZE / 4096; page += MultifdPacket.PAGE_COUNT) {
        for (int i = 0; i < MultifdPacket.PAGE_COUNT; i++) {
          offsets[i] = (page + i) * 4096;
        }
        w.writePacket(out, false, num++, src, offsets, MultifdPacket.PAGE_COUNT);
      }
      w.writePacket(out, true, num, null, offsets, 0);
      return w.wireBytes();
    }
  }

  /** Every page of the block as packets of one channel, compressed as configured. */
  @Benchmark
  public long encode() throws IOException {
    return sendAll(new DiscardChannel());
  }

  /** A recorded channel (all pages, then a SYNC) decoded into the destination block. */
  @Benchmark
  public long decode() throws IOException {
    MigrationInput in = MigrationInput.of(recorded);
    MultifdPacket p = new MultifdPacket();
    RamBlockResolver blocks = RamBlockResolver.of(List.of(dst));
    try (MultifdPageReader r = new MultifdPageReader(0, method)) {
      while (p.read(in)) {
        r.readPages(p, in, blocks);
      }
      return r.pages();
    }
  }

  /** Baseline: a plain copy of the same bytes, RAM to RAM. */
  @Benchmark
  public MemorySegment copy() {
    MemorySegment.copy(src.memory(), 0, dst.memory(), 0, SIZE);
    return dst.memory();
  }
}
