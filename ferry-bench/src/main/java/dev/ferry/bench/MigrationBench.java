package dev.ferry.bench;

import dev.ferry.cli.live.Units;
import dev.ferry.machine.IncomingLoad;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.StressCheck;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.qmp.Sizes;
import dev.ferry.transport.RawCopy;
import dev.ferry.transport.TlsChannel;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * End-to-end migration benchmark: for every guest size × program × transport, migrates a running
 * machine to a second machine in the same JVM over a real socket (tcp on loopback or a unix socket),
 * then copies the same number of stream bytes over the same transport with {@link RawCopy} twice, and
 * prints a Markdown table of total time, downtime, setup time, throughput and both raw-copy ratios:
 * the baseline is RAM to RAM (read from the stopped source's guest RAM, written into the
 * destination's preallocated RAM, as the migration's bytes are), the extra column is cache-resident
 * 1 MiB buffers (the transport alone).
 *
 * <p>Transport {@code tls} is tcp inside TLS 1.3 with mutual authentication (throw-away
 * certificates made at start, EC P-256); its raw copy is plain tcp, so its ratio is the cost of
 * TLS, and the table names the negotiated cipher suite.
 *
 * <p>In-process on purpose: both machines live in one JVM so the driver can wait for exact guest
 * states (the {@code fill} program done, the {@code stress} program past its first pass) and read
 * the engine's statistics directly; the bytes still cross the kernel's socket layer. The targets
 * (fill ≥ 90% of raw copy, stress downtime ≤ 20 ms, 4 GiB idle well under 0.5 s) are reported,
 * never asserted. Correctness is: after every completed migration the stopped source's exact
 * digest ({@link MachineHost#memoryDigest()}) must equal the destination's, taken after the load
 * and before its guest ran (plus the stress pattern for {@code stress}); the {@code check} column
 * shows it, and any mismatch (named by block and page) makes the exit code 1.
 *
 * <pre>{@code bin/bench-migration [--sizes 1G,4G] [--programs idle,fill,stress,workingset]
 *     [--transports tcp,unix] [--repeats 1] [--downtime-limit MS] [--warmup-ms MS]}</pre>
 */
public final class MigrationBench {
  private MigrationBench() {}

  /** One measured migration and its raw-copy baseline. */
  record Row(
      long memoryBytes,
      String program,
      String transport,
      int run,
      MigrationStatus status,
      String error,
      MigrationStats.Snapshot stats,
      String check,
      RawCopy.Result raw,
      RawCopy.Result rawCacheHot,
      String cipherSuite,
      Multifd multifd,
      long wireBytes,
      String loadAverage) {

    double throughputBytesPerSec() {
      return stats.totalTimeMs() > 0 ? stats.transferredBytes() * 1000.0 / stats.totalTimeMs() : 0;
    }
  }

  /**
   * One multifd setting of a row: {@code off}, or {@code CHANNELS:COMPRESSION} ({@code 2:zstd}).
   * Both machines get the capability and the same parameters.
   */
  record Multifd(int channels, String compression) {
    static final Multifd OFF = new Multifd(0, "none");

    static Multifd parse(String v) {
      if (v.equals("off")) {
        return OFF;
      }
      String[] f = v.split(":");
      int n = f[0].matches("[0-9]{1,3}") ? Integer.parseInt(f[0]) : 0;
      String c = f.length > 1 ? f[1] : "none";
      if (n < 1 || n > 255 || !dev.ferry.qmp.qapi.MigrationParameter.MULTIFD_COMPRESSION_VALUES.contains(c) || f.length > 2) {
        throw new IllegalArgumentException("--multifd: off or CHANNELS:none|zlib|zstd (e.g. 2:zstd), got " + v);
      }
      return new Multifd(n, c);
    }

    boolean on() {
      return channels > 0;
    }

    @Override
    public String toString() {
      return on() ? channels + "×" + compression : "off";
    }
  }

  record Options(
      List<Long> sizes,
      List<String> programs,
      List<String> transports,
      int repeats,
      long downtimeLimitMs,
      long warmupMs,
      boolean json,
      List<Multifd> multifd,
      boolean jitWarmup) {

    static Options parse(String[] args) {
      List<Long> sizes = List.of(1L << 30, 4L << 30);
      List<String> programs = List.of("idle", "fill", "stress");
      List<String> transports = List.of("tcp", "unix");
      int repeats = 1;
      long downtime = 300;
      long warmup = 500;
      boolean json = false;
      boolean jitWarmup = false;
      List<Multifd> multifd = List.of(Multifd.OFF);
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        String v = i + 1 < args.length ? args[i + 1] : null;
        if (a.equals("--json")) {
          json = true;
          continue;
        }
        if (a.equals("--jit-warmup")) {
          jitWarmup = true;
          continue;
        }
        switch (a) {
          case "--sizes" -> sizes = split(need(a, v)).stream().map(x -> Sizes.parse(x, 'M')).toList();
          case "--programs" -> programs = split(need(a, v));
          case "--transports" -> transports = split(need(a, v));
          case "--repeats" -> repeats = Integer.parseInt(need(a, v));
          case "--downtime-limit" -> downtime = Long.parseLong(need(a, v));
          case "--warmup-ms" -> warmup = Long.parseLong(need(a, v));
          case "--multifd" -> multifd = split(need(a, v)).stream().map(Multifd::parse).toList();
          case "-h", "--help" -> {
            System.out.println(
                "usage: bench-migration [--sizes 1G,4G] [--programs idle,fill,stress,workingset]"
                    + " [--transports tcp,unix,tls] [--repeats N] [--downtime-limit MS] [--warmup-ms MS] [--json] [--jit-warmup]"
                    + " [--multifd off,1:none,2:none,4:none,1:zstd,2:zstd,4:zstd]");
            System.exit(0);
          }
          default -> throw new IllegalArgumentException("unknown option " + a);
        }
        i++;
      }
      for (String t : transports) {
        if (!t.equals("tcp") && !t.equals("unix") && !t.equals("tls")) {
          throw new IllegalArgumentException("transport must be tcp, unix or tls: " + t);
        }
      }
      if (repeats < 1) {
        throw new IllegalArgumentException("--repeats must be at least 1");
      }
      for (String p : programs) {
        if (!List.of("idle", "fill", "stress", "workingset", "random").contains(p)) {
          throw new IllegalArgumentException("program must be idle, fill, stress, workingset or random: " + p);
        }
      }
      if (transports.contains("tls") && multifd.stream().anyMatch(Multifd::on)) {
        throw new IllegalArgumentException("--multifd rows run over tcp and unix only (not tls)");
      }
      return new Options(sizes, programs, transports, repeats, downtime, warmup, json, multifd, jitWarmup);
    }

    private static String need(String opt, String v) {
      if (v == null) {
        throw new IllegalArgumentException(opt + " needs a value");
      }
      return v;
    }

    private static List<String> split(String v) {
      return Arrays.stream(v.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
    }
  }

  public static void main(String[] args) throws Exception {
    quietLogging();
    Options o = parseOptions("bench-migration", args, Options::parse);
    // --json: one JSON document on stdout instead of the Markdown text
    PrintStream out = o.json() ? new PrintStream(OutputStream.nullOutputStream()) : System.out;
    String loadAtStart = loadAverage();
    out.println("# Ferry end-to-end migration benchmark");
    out.println();
    out.println("- mode: in-process (source and destination machines in one JVM, stream over a real "
        + "loopback tcp / unix socket); the destination commits its RAM first (--mem-prealloc), as one started ahead of the migration would");
    out.println("- raw copy (the ratio's baseline) = RawCopy of the same byte count over the same transport right after each "
        + "migration, read from the stopped source's guest RAM and written into the destination's (after the digest "
        + "check), 1 MiB per read/write, one thread each side: the memory traffic of the migration without its work");
    out.println("- raw copy, cache-hot = the same over one cache-resident 1 MiB buffer each side (the transport alone; "
        + "memory hardly touched), as an extra column");
    out.println("- host: " + Runtime.getRuntime().availableProcessors() + " cpus, load average "
        + loadAverage() + " at start, JDK " + Runtime.version());
    double memcpy = memoryCopyBytesPerSec();
    out.println("- memory copy (best of 5 x 256 MiB, MemorySegment.copy): " + Units.rate(memcpy));
    out.println("- downtime limit " + o.downtimeLimitMs() + " ms, max-bandwidth default, warm-up "
        + o.warmupMs() + " ms (stress: past its first full pass; fill: RAM filled; workingset: RAM filled, its loop begun)");
    out.println("- JIT warm-up: " + (o.jitWarmup()
        ? "one unmeasured 256 MiB migration per program, transport and multifd setting first (the compilers done before the rows)"
        : "none (the first rows share the cores with the JIT compilers; --jit-warmup for an unmeasured one first)"));
    out.println();
    List<Row> rows = new ArrayList<>();
    Path dir = Files.createTempDirectory("ferry-bench");
    try {
      if (o.jitWarmup()) {
        for (String program : o.programs()) {
          for (String transport : o.transports()) {
            for (Multifd mf : o.multifd()) {
              Row r = runOne(256L << 20, program, transport, mf, 0, o, dir);
              System.err.println("bench-migration: JIT warm-up " + program + " " + transport + " multifd " + mf + ": "
                  + r.status() + ", " + r.stats().totalTimeMs() + " ms");
            }
          }
        }
      }
      for (long size : o.sizes()) {
        for (String program : o.programs()) {
          for (String transport : o.transports()) {
            for (Multifd mf : o.multifd()) {
              for (int run = 1; run <= o.repeats(); run++) {
                Row r = runOne(size, program, transport, mf, run, o, dir);
                rows.add(r);
                System.err.println("bench-migration: " + Units.bytes(size) + " " + program + " " + transport
                    + " multifd " + mf + " run " + run + ": " + r.status() + ", " + r.stats().totalTimeMs()
                    + " ms, downtime " + r.stats().downtimeMs() + " ms" + (r.error() == null ? "" : " (" + r.error() + ")"));
              }
            }
          }
        }
      }
    } finally {
      deleteTree(dir);
    }
    printTable(out, rows);
    out.println();
    out.println("- load average at end: " + loadAverage());
    if (o.json()) {
      System.out.println(new com.fasterxml.jackson.databind.ObjectMapper()
          .enable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
          .writeValueAsString(json(o, rows, loadAtStart).put("memory-copy-bytes-per-sec", Math.round(memcpy))));
    }
    List<Row> bad = rows.stream().filter(r -> failed(r.check())).toList();
    for (Row r : bad) {
      System.err.println("bench-migration: " + Units.bytes(r.memoryBytes()) + " " + r.program() + " " + r.transport()
          + " run " + r.run() + ": " + r.check());
    }
    if (!bad.isEmpty()) {
      System.exit(1);
    }
  }

  /** Every figure of the Markdown report, units in the key names. */
  static com.fasterxml.jackson.databind.node.ObjectNode json(Options o, List<Row> rows, String loadAtStart) {
    var doc = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
    doc.put("mode", "in-process");
    doc.putObject("host").put("cpus", Runtime.getRuntime().availableProcessors())
        .put("load-average-start", loadAtStart).put("load-average-end", loadAverage()).put("jdk", Runtime.version().toString());
    doc.put("downtime-limit-ms", o.downtimeLimitMs()).put("warmup-ms", o.warmupMs()).put("jit-warmup", o.jitWarmup());
    var runs = doc.putArray("runs");
    for (Row r : rows) {
      MigrationStats.Snapshot s = r.stats();
      double rawRate = r.raw().bytesPerSec();
      var j = runs.addObject();
      j.put("guest-memory-bytes", r.memoryBytes()).put("program", r.program()).put("transport", r.transport())
          .put("multifd-channels", r.multifd().channels())
          .put("multifd-compression", r.multifd().on() ? r.multifd().compression() : null)
          .put("run", r.run()).put("status", r.status() == null ? "timeout" : r.status().qapiName());
      if (r.error() != null) {
        j.put("error", r.error());
      }
      j.put("total-time-ms", s.totalTimeMs());
      if (s.downtimeMs() >= 0) {
        j.put("downtime-ms", s.downtimeMs());
      } else {
        j.putNull("downtime-ms");
      }
      j.put("setup-time-ms", s.setupTimeMs()).put("transferred-bytes", s.transferredBytes())
          .put("multifd-bytes", s.multifdBytes()).put("wire-bytes", r.wireBytes())
          .put("throughput-bytes-per-sec", Math.round(r.throughputBytesPerSec()))
          .put("raw-copy-elapsed-ns", r.raw().elapsedNs()).put("raw-copy-bytes-per-sec", Math.round(rawRate))
          .put("migration-fraction-of-raw", rawRate > 0 ? r.throughputBytesPerSec() / rawRate : 0)
          .put("raw-copy-cache-hot-elapsed-ns", r.rawCacheHot().elapsedNs())
          .put("raw-copy-cache-hot-bytes-per-sec", Math.round(r.rawCacheHot().bytesPerSec()))
          .put("migration-fraction-of-raw-cache-hot",
              r.rawCacheHot().bytesPerSec() > 0 ? r.throughputBytesPerSec() / r.rawCacheHot().bytesPerSec() : 0)
          .put("dirty-sync-count", s.dirtySyncCount()).put("check", r.check()).put("load-average", r.loadAverage());
    }
    return doc;
  }

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return String.format(Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }
  }

  /** The engine's logging at warn, unless the command line set it (the drivers' start). */
  static void quietLogging() {
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
  }

  /** A driver's options; a bad one prints "{@code name}: message" and exits with code 2. */
  static <O> O parseOptions(String name, String[] args, Function<String[], O> parse) {
    try {
      return parse.apply(args);
    } catch (IllegalArgumentException e) {
      System.err.println(name + ": " + e.getMessage());
      System.exit(2);
      return null;
    }
  }

  /** Deletes {@code dir} and everything in it. */
  static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  /** Where to listen on {@code transport}: the unix socket {@code socket}, else a free loopback tcp port. */
  static String uri(String transport, Path socket) {
    return transport.equals("unix") ? "unix:" + socket : "tcp:127.0.0.1:0";
  }

  /** The raw-copy baseline: {@code bytes} over {@code transport} (its socket in {@code dir}). */
  static RawCopy.Result rawCopy(String transport, Path dir, long bytes) throws IOException, InterruptedException {
    return RawCopy.measure(uri(transport, dir.resolve("raw.sock")), bytes);
  }

  /** The stopped source's exact digest against the destination's: "digest equal" or the first mismatch. */
  static String digestCheck(MachineHost src, MachineHost dst) {
    return src.memoryDigest().firstDifference(dst.memoryDigest()).map(d -> "DIGEST MISMATCH: " + d).orElse("digest equal");
  }

  /** Whether a row's check failed (a digest mismatch or a failed check): the exit code is then 1. */
  static boolean failed(String check) {
    return check.contains("MISMATCH") || check.contains("FAILED");
  }

  /**
   * A throw-away PKI for the tls rows, made by {@code bin/ferry-certs} (openssl; its path in the
   * system property {@code ferry.certs}, set by {@code bin/bench-migration}): {@code dir/server} and
   * {@code dir/client} in QEMU's file names.
   */
  static Path makeCerts(Path dir) throws IOException, InterruptedException {
    String script = System.getProperty("ferry.certs");
    if (script == null) {
      throw new IOException("tls transport: no bin/ferry-certs (run through bin/bench-migration, or set -Dferry.certs=PATH)");
    }
    Process p = new ProcessBuilder(script, dir.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).strip();
    if (p.waitFor() != 0) {
      throw new IOException("tls transport: " + script + " failed: " + out);
    }
    return dir;
  }

  /** Counts the {@code B}s of the stress and workingset programs (one per pass) and sees the first {@code A}. */
  static final class PassCounter extends OutputStream {
    final AtomicLong passes = new AtomicLong();
    volatile boolean started;

    @Override
    public void write(int b) {
      if (b == 'B') {
        passes.incrementAndGet();
      } else if (b == 'A') {
        started = true; // workingset: RAM filled, the working set loop begins
      }
    }
  }

  /**
   * Memory-copy speed on this machine now (bytes/s): the best of five copies of 256 MiB between two
   * off-heap segments, the yardstick under the transports (DESIGN.md §8).
   */
  static double memoryCopyBytesPerSec() {
    long n = 256L << 20;
    try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
      java.lang.foreign.MemorySegment from = a.allocate(n, 4096);
      java.lang.foreign.MemorySegment to = a.allocate(n, 4096);
      from.fill((byte) 1);
      to.fill((byte) 2); // both committed before timing
      long best = Long.MAX_VALUE;
      for (int i = 0; i < 5; i++) {
        long t0 = System.nanoTime();
        java.lang.foreign.MemorySegment.copy(from, 0, to, 0, n);
        best = Math.min(best, System.nanoTime() - t0);
      }
      return n * 1e9 / best;
    }
  }

  static Row runOne(long size, String program, String transport, Multifd mf, int run, Options o, Path dir)
      throws Exception {
    String loadAtStart = loadAverage(); // the machine is shared: each row says how busy it was
    String listen = uri(transport, dir.resolve("mig.sock"));
    boolean tls = transport.equals("tls");
    AtomicReference<String> suite = new AtomicReference<>("-");
    PassCounter passes = new PassCounter();
    MigrationStats.Snapshot stats;
    MigrationStatus status;
    String error = null;
    String check = "-";
    long wireBytes;
    RawCopy.Result raw;
    try (MachineHost src = new MachineHost(Machine.builder().memory(size).program(program).serial(passes).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(size).program(program).memPrealloc(true).build())) {
      src.machine().resume();
      warmUp(src.machine(), program, passes, o.warmupMs());
      dst.machine().awaitRamPreallocated(); // a destination started ahead of time, as with --mem-prealloc
      TlsCredentials clientCreds = null;
      if (tls) {
        Path pki = makeCerts(dir.resolve("pki"));
        dst.migration().objects().add(
            TlsCredentials.load("tls0", pki.resolve("server"), TlsCredentials.Endpoint.SERVER, true));
        dst.migration().setParameters(Map.of("tls-creds", "tls0"));
        clientCreds = TlsCredentials.load("tls0", pki.resolve("client"), TlsCredentials.Endpoint.CLIENT, true);
      }
      if (mf.on()) {
        for (MachineHost h : List.of(src, dst)) {
          h.migration().setCapabilities(Map.of(MigrationCapability.MULTIFD, true));
          h.migration().setParameters(Map.of("multifd-channels", (long) mf.channels(), "multifd-compression", mf.compression()));
        }
      }
      IncomingLoad incoming = IncomingLoad.listen(dst, listen);
      src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
      src.migration().setParameters(Map.of("downtime-limit", o.downtimeLimitMs()));
      OutgoingMigration m;
      if (tls) {
        TlsCredentials creds = clientCreds;
        String uri = incoming.uri();
        m = src.migration().migrate(() -> {
          TlsChannel c = TlsChannel.client(Transports.connect(uri), creds, "127.0.0.1");
          suite.set(c.cipherSuite());
          return c;
        });
      } else {
        m = src.migration().migrate(incoming.uri());
      }
      status = m.await(30, TimeUnit.MINUTES);
      stats = m.info();
      wireBytes = stats.transferredBytes() - stats.multifdBytes() + m.multifdWireBytes();
      if (status != MigrationStatus.COMPLETED) {
        error = src.migration().outgoingState().errorDesc();
        m.cancel();
      }
      String destinationError = incoming.error(5, TimeUnit.MINUTES);
      if (error == null) {
        error = destinationError;
      }
      if (error == null) {
        // the destination has not run: its machine stays stopped until startAfterLoad
        check = digestCheck(src, dst);
        if (program.equals("stress")) {
          StressCheck.Result r = StressCheck.check(dst.machine());
          check += r.passed() ? ", stress ok" : ", stress FAILED " + r.badPageCount();
        }
      }
      // the like-for-like baseline: both machines are stopped and checked, their RAM is free to use
      raw = RawCopy.measure(uri(transport, dir.resolve("raw.sock")), Math.max(1, stats.transferredBytes()),
          largestBlock(src.machine()), largestBlock(dst.machine()));
    }
    RawCopy.Result rawCacheHot = rawCopy(transport, dir, Math.max(1, stats.transferredBytes()));
    return new Row(size, program, transport, run, status, error, stats, check, raw, rawCacheHot, suite.get(), mf, wireBytes,
        loadAtStart);
  }

  /** The memory of the machine's largest RAM block (its guest RAM, for the RAM-to-RAM raw copy). */
  static java.lang.foreign.MemorySegment largestBlock(Machine m) {
    return m.ramBlocks().stream().max(Comparator.comparingLong(b -> b.usedLength())).orElseThrow().memory();
  }

  private static void warmUp(Machine m, String program, PassCounter passes, long warmupMs)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
    switch (program) {
      case "stress" -> {
        while (passes.passes.get() < 1 && System.nanoTime() < deadline) {
          Thread.sleep(10);
        }
      }
      case "fill" -> {
        while (m.cpu(0).pc() != 2 && System.nanoTime() < deadline) {
          Thread.sleep(10);
        }
      }
      case "workingset" -> {
        while (!passes.started && System.nanoTime() < deadline) {
          Thread.sleep(10);
        }
      }
      default -> {}
    }
    Thread.sleep(warmupMs);
  }

  static void printTable(PrintStream out, List<Row> rows) {
    out.println("| guest | program | transport | multifd | run | status | total | downtime | setup | stream bytes"
        + " | on the wire | throughput | raw copy RAM→RAM (same bytes) | migration/raw | raw copy cache-hot"
        + " | migration/cache-hot | dirty syncs | check | cipher suite | load average |");
    out.println("|---|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|");
    for (Row r : rows) {
      MigrationStats.Snapshot s = r.stats();
      double rawRate = r.raw().bytesPerSec();
      out.println(String.join(" | ",
          "| " + Units.bytes(r.memoryBytes()),
          r.program(),
          r.transport(),
          r.multifd().toString(),
          Integer.toString(r.run()),
          r.status() == null ? "timeout" : r.status().qapiName(),
          s.totalTimeMs() + " ms",
          (s.downtimeMs() < 0 ? "-" : s.downtimeMs() + " ms"),
          s.setupTimeMs() + " ms",
          Units.bytes(s.transferredBytes()),
          Units.bytes(r.wireBytes()),
          Units.rate(r.throughputBytesPerSec()),
          String.format(Locale.ROOT, "%.1f ms (%s)", r.raw().elapsedNs() / 1e6, Units.rate(rawRate)),
          Units.percent(r.throughputBytesPerSec(), rawRate),
          String.format(Locale.ROOT, "%.1f ms (%s)", r.rawCacheHot().elapsedNs() / 1e6, Units.rate(r.rawCacheHot().bytesPerSec())),
          Units.percent(r.throughputBytesPerSec(), r.rawCacheHot().bytesPerSec()),
          Long.toString(s.dirtySyncCount()),
          r.check(),
          r.cipherSuite(),
          r.loadAverage() + " |"));
    }
  }
}
