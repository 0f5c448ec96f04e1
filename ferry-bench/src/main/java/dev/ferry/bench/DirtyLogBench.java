package dev.ferry.bench;

import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.GuestRam;
import dev.ferry.ram.RamBlock;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Guest write throughput through {@link GuestMemory} with the dirty log off and on: stress-style
 * byte increments walking the pages of a 256 MiB block, and random 8-byte writes. One guest step
 * per invocation of 4096 writes, as a vCPU runs them.
 *
 * <pre>
 * java -cp 'ferry-bench/target/ferry-bench.jar:ferry-bench/target/lib/*' org.openjdk.jmh.Main DirtyLogBench -f 1 -wi 2 -i 3
 * </pre>
 */
@State(Scope.Thread)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED") // RamBlock maps memory through FFM
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class DirtyLogBench {
  private static final int WRITES_PER_STEP = 4096;
  private static final int PAGE = 4096;

  @Param({"off", "on"})
  public String log;

  private GuestRam ram;
  private GuestMemory mem;
  private long pages;
  private long cursor;
  private long[] randomOffsets;
  private int randomIndex;

  @Setup(Level.Trial)
  public void setUp() {
    ram = new GuestRam(List.of(RamBlock.allocate("ram", 256L << 20)));
    mem = ram.openMemory();
    mem.fill(0, 0, 256L << 20, (byte) 1); // commit the pages: measure writes, not page faults
    pages = mem.pageCount(0);
    SplittableRandom random = new SplittableRandom(42);
    randomOffsets = new long[1 << 20];
    for (int i = 0; i < randomOffsets.length; i++) {
      randomOffsets[i] = random.nextLong((256L << 20) / 8) * 8;
    }
    if (log.equals("on")) {
      ram.dirtyLog().start();
    }
  }

  @Setup(Level.Iteration)
  public void harvest() {
    ram.dirtyLog().discardPending(); // start each iteration from a clean log, as after a sync
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    mem.close();
    ram.close();
  }

  @Benchmark
  @OperationsPerInvocation(WRITES_PER_STEP)
  public void stressIncrement() {
    GuestMemory m = mem;
    long c = cursor;
    m.enterStep();
    for (int i = 0; i < WRITES_PER_STEP; i++) {
      m.addByte(0, c * PAGE, 1);
      if (++c == pages) {
        c = 0;
      }
    }
    m.exitStep();
    cursor = c;
  }

  @Benchmark
  @OperationsPerInvocation(WRITES_PER_STEP)
  public void random8ByteWrite() {
    GuestMemory m = mem;
    long[] offsets = randomOffsets;
    int idx = randomIndex;
    m.enterStep();
    for (int i = 0; i < WRITES_PER_STEP; i++) {
      m.putLong(0, offsets[idx], idx);
      idx = (idx + 1) & (offsets.length - 1);
    }
    m.exitStep();
    randomIndex = idx;
  }
}
