package dev.ferry.bench;

import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamLoader;
import dev.ferry.ram.RamRecordWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * RAM stream throughput for a 256 MiB block of random (dense) pages: decode (the stream bytes, held
 * in a byte array, loaded by {@link RamLoader}), encode ({@link RamRecordWriter} into a discarding
 * channel), and as the baseline a plain copy of the same number of bytes. Each op handles 256 MiB,
 * so GB/s = 0.268 / (seconds per op). Also the zero-page check: {@code MemorySegment.mismatch}
 * against a zero page versus a loop over longs, on a zero page (the worst case: all bytes read), and
 * the saver's {@link RamRecordWriter#isZeroPage} on a dense page and on a zero page.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"-Xmx3g", "--enable-native-access=ALL-UNNAMED"})
public class StreamDecodeBench {
  static final long RAM_BYTES = 256L << 20;
  static final int PAGE = 4096;

  RamBlock source;
  RamBlock target;
  byte[] stream;
  MemorySegment copyTarget;
  MemorySegment zeroPage;
  /** One page of {@link #source} (random data; cache-resident: the benchmark measures the instructions). */
  long denseOffset = 40L * PAGE;

  @Setup(Level.Trial)
  public void setup() throws IOException {
    source = RamBlock.allocate("pc.ram", RAM_BYTES);
    target = RamBlock.allocate("pc.ram", RAM_BYTES);
    Random r = new Random(42);
    byte[] page = new byte[PAGE];
    for (long off = 0; off < RAM_BYTES; off += PAGE) {
      r.nextBytes(page);
      MemorySegment.copy(page, 0, source.memory(), ValueLayout.JAVA_BYTE, off, PAGE);
    }
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream((int) RAM_BYTES + (1 << 20));
    encodeInto(Channels.newChannel(bytes));
    stream = bytes.toByteArray();
    copyTarget = MemorySegment.ofArray(new byte[stream.length]);
    zeroPage = java.lang.foreign.Arena.global().allocate(PAGE, PAGE);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    source.close();
    target.close();
  }

  private long encodeInto(WritableByteChannel ch) throws IOException {
    MigrationOutput out = new MigrationOutput(ch);
    RamRecordWriter w = new RamRecordWriter(out);
    w.writeBlockList(List.of(source), false);
    w.writeEos();
    for (long off = 0; off < RAM_BYTES; off += PAGE) {
      w.writePage(source, off);
    }
    w.writeEos();
    out.flush();
    return out.position();
  }

  /** Stream bytes → RAM block through the RAM loader. */
  @Benchmark
  public long decode() throws IOException {
    RamLoader loader = new RamLoader(RamBlockResolver.of(List.of(target)), RamLoadOptions.defaults());
    MigrationInput in = MigrationInput.of(stream);
    loader.loadChunk(in);
    loader.loadChunk(in);
    return loader.stats().normalPages();
  }

  /** RAM block → stream (pages queued by reference, written with gathering writes). */
  @Benchmark
  public long encode() throws IOException {
    return encodeInto(new DiscardChannel());
  }

  /** Baseline: copying the same number of bytes from heap to heap. */
  @Benchmark
  public long baselineCopy() {
    MemorySegment.copy(MemorySegment.ofArray(stream), 0, copyTarget, 0, stream.length);
    return copyTarget.byteSize();
  }

  @Benchmark
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public boolean isZeroMismatch() {
    return RamRecordWriter.isZero(zeroPage);
  }

  /** The saver's zero test on a dense page (random data): the common case of a full pass. */
  @Benchmark
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public boolean isZeroPageDense() {
    return RamRecordWriter.isZeroPage(source.memory(), denseOffset);
  }

  /** The saver's zero test on a zero page (all of it read). */
  @Benchmark
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public boolean isZeroPageZero() {
    return RamRecordWriter.isZeroPage(zeroPage, 0);
  }

  @Benchmark
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  public boolean isZeroLongLoop() {
    for (long i = 0; i < PAGE; i += 8) {
      if (zeroPage.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != 0) {
        return false;
      }
    }
    return true;
  }
}
