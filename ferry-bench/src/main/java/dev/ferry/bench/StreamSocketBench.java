package dev.ferry.bench;

import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamLoader;
import dev.ferry.ram.RamRecordWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.RawCopy;
import dev.ferry.transport.TransportListener;
import dev.ferry.transport.Transports;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The RAM stream alone over a real socket, with the CPU time of each side: one thread writes every
 * page of a block of random data as the saver does (zero test, PAGE records by reference, gathering
 * writes), another loads them into a fresh block as a destination does ({@link RamLoader}, RAM known
 * to start zeroed), over {@link Transports} tcp or unix; then the RAM-to-RAM {@link RawCopy} of the
 * same byte count between the same two blocks. Per run: wall time, and the sender's and receiver's
 * thread CPU time ({@link ThreadMXBean}), which a busy machine disturbs far less than wall time, so
 * that a change to either side can be judged by its own thread. The loaded block is checked equal to
 * the source.
 *
 * <pre>{@code java -cp 'ferry-bench/target/ferry-bench.jar:ferry-bench/target/lib/*' \
 *     dev.ferry.bench.StreamSocketBench [MiB=1024] [runs=4] [unix|tcp]}</pre>
 */
public final class StreamSocketBench {
  static final int PAGE = 4096;

  private StreamSocketBench() {}

  public static void main(String[] args) throws Exception {
    MigrationBench.quietLogging();
    long size = (args.length > 0 ? Long.parseLong(args[0]) : 1024) << 20;
    int runs = args.length > 1 ? Integer.parseInt(args[1]) : 4;
    String transport = args.length > 2 ? args[2] : "unix";
    if (!transport.equals("unix") && !transport.equals("tcp")) {
      System.err.println("stream-socket-bench: transport must be unix or tcp: " + transport);
      System.exit(2);
    }
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    Path dir = Files.createTempDirectory("ferry-stream-bench");
    try (RamBlock src = RamBlock.allocate("pc.ram", size);
        RamBlock dst = RamBlock.allocate("pc.ram", size);
        ExecutorService pool = Executors.newFixedThreadPool(1)) {
      byte[] page = new byte[PAGE];
      Random r = new Random(1);
      for (long o = 0; o < size; o += PAGE) {
        r.nextBytes(page);
        MemorySegment.copy(page, 0, src.memory(), ValueLayout.JAVA_BYTE, o, PAGE);
      }
      System.out.printf(Locale.ROOT, "# %d MiB of random pages over %s, load average %s%n", size >> 20, transport,
          MigrationBench.loadAverage());
      for (int run = 1; run <= runs; run++) {
        dst.memory().fill((byte) 0); // committed and zero, as a preallocated destination
        String uri = MigrationBench.uri(transport, dir.resolve("s.sock"));
        long[] cpuNs = new long[2];
        long start;
        long stream;
        try (TransportListener l = Transports.listen(uri)) {
          start = System.nanoTime();
          Future<?> receiver = pool.submit(() -> {
            long c0 = mx.getCurrentThreadCpuTime();
            try (MigrationChannel ch = l.accept()) {
              RamLoader loader = new RamLoader(RamBlockResolver.of(List.of(dst)),
                  RamLoadOptions.defaults().withBlocksStartZeroed(true));
              loader.loadChunk(new MigrationInput(ch));
            }
            cpuNs[1] = mx.getCurrentThreadCpuTime() - c0;
            return null;
          });
          long c0 = mx.getCurrentThreadCpuTime();
          try (MigrationChannel ch = Transports.connect(l.boundUri())) {
            MigrationOutput out = new MigrationOutput(ch);
            RamRecordWriter w = new RamRecordWriter(out);
            w.writeBlockList(List.of(src), false);
            for (long o = 0; o < size; o += PAGE) {
              if (RamRecordWriter.isZeroPage(src.memory(), o)) {
                w.writeZeroPage(src, o);
              } else {
                w.writePage(src, o);
              }
            }
            w.writeEos();
            out.flush();
            stream = out.position();
            cpuNs[0] = mx.getCurrentThreadCpuTime() - c0;
          }
          receiver.get();
        }
        long wallNs = System.nanoTime() - start;
        boolean equal = src.memory().mismatch(dst.memory()) < 0;
        RawCopy.Result raw = RawCopy.measure(MigrationBench.uri(transport, dir.resolve("raw.sock")), stream,
            src.memory(), dst.memory());
        System.out.printf(Locale.ROOT,
            "run %d: stream %.1f ms (sender cpu %.1f ms, receiver cpu %.1f ms, %s), raw copy RAM→RAM %.1f ms, stream rate / raw rate %.0f%%%n",
            run, wallNs / 1e6, cpuNs[0] / 1e6, cpuNs[1] / 1e6, equal ? "equal" : "MISMATCH", raw.elapsedNs() / 1e6,
            100.0 * raw.elapsedNs() / wallNs);
        if (!equal) {
          System.exit(1);
        }
      }
      System.out.println("# load average at end " + MigrationBench.loadAverage());
    } finally {
      MigrationBench.deleteTree(dir);
    }
  }
}
