package dev.ferry.bench;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.ram.RamBlock;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * The exact digest ({@code ferry-memory-digest}, {@link MachineHost#memoryDigest()}) of a stopped
 * machine whose RAM is populated in full with pseudo-random data (every page present, so every
 * byte is hashed: the worst case), against the baseline of a plain memory read of the same bytes in
 * the same run: a sum of longs over the block. One thread each. GB/s = {@code sizeMib} × 1.048576 /
 * 1000 / (seconds per op); the ratio of the two times is the digest's cost over just reading RAM.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", "--enable-native-access=ALL-UNNAMED"})
public class DigestBench {
  /** Guest RAM in MiB: 1–4 GiB fits a 24 GiB, 2-core machine shared with others. */
  @Param({"2048"})
  public long sizeMib;

  MachineHost host;
  MemorySegment ram;

  @Setup(Level.Trial)
  public void setup() {
    host =
        new MachineHost(
            Machine.builder().memory(sizeMib << 20).program("idle").serial(OutputStream.nullOutputStream()).build());
    RamBlock block = host.machine().ramBlocks().getFirst();
    ram = block.memory();
    fillXorshift(ram);
  }

  /** Fills {@code m} with xorshift64 longs (incompressible, no zero page), the same bytes every run. */
  static void fillXorshift(MemorySegment m) {
    long x = 0x2545f4914f6cdd1dL;
    for (long off = 0; off < m.byteSize(); off += 8) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      m.set(ValueLayout.JAVA_LONG, off, x);
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    host.close();
  }

  /** The whole-machine digest: every page's CRC32C, the folds, the device sections. */
  @Benchmark
  public MemoryDigest digest() {
    return host.memoryDigest();
  }

  /**
   * Baseline: reading the same bytes, summing them as longs (1 MiB slices with an int-indexed loop,
   * the shape C2 unrolls and vectorises best, so the baseline is as fast as a plain read gets).
   */
  @Benchmark
  public long readLongs() {
    long sum = 0;
    long n = ram.byteSize();
    for (long base = 0; base < n; base += SLICE) {
      MemorySegment s = ram.asSlice(base, SLICE);
      for (int off = 0; off < SLICE; off += 8) {
        sum += s.get(ValueLayout.JAVA_LONG, off);
      }
    }
    return sum;
  }

  private static final int SLICE = 1 << 20;
}
