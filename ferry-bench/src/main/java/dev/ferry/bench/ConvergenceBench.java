package dev.ferry.bench;

import dev.ferry.machine.IncomingLoad;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.StressCheck;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.qmp.Sizes;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Issue 10 item 6: a guest whose {@code workingset} (as fast as its vCPU goes) outruns precopy,
 * migrated with auto-converge alone and with the switch to postcopy ({@code ferry-auto-postcopy}, no
 * {@code migrate-start-postcopy}), in one JVM over a unix socket. Per run: total time, downtime,
 * the guest's own rate (working-set bytes it increments per second) before and during the
 * migration, the highest CPU throttle, and the check. The guest's progress travels with its CPU
 * state, so "during" is the working-set passes from the start of the migration to its end, wherever
 * the guest ran (in postcopy the destination runs it from the switch on).
 *
 * <p>Checks: auto-converge ends with the stopped source's digest equal to the destination's before
 * its guest ran; the postcopy run's destination runs its guest (that is the point of postcopy), so
 * it is checked by the workingset pattern on the destination once stopped, and the source's digest
 * is not comparable. A mismatch makes the exit code 1.
 *
 * <pre>{@code bin/bench-convergence [--memory 1G] [--working-set 768M] [--modes auto-converge,postcopy]
 *     [--repeats 1] [--downtime-limit MS] [--max-bandwidth RATE] [--before-ms 3000]}</pre>
 */
public final class ConvergenceBench {
  private ConvergenceBench() {}

  record Options(long memoryBytes, long workingSetBytes, List<String> modes, int repeats, long downtimeLimitMs,
      Long maxBandwidthBytesPerSec, long beforeMs) {
    static Options parse(String[] args) {
      long memory = 1L << 30;
      long ws = 768L << 20;
      List<String> modes = List.of("auto-converge", "postcopy");
      int repeats = 1;
      long downtime = 300;
      Long bw = null;
      long before = 3000;
      for (int i = 0; i < args.length; i += 2) {
        String a = args[i];
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(a + " needs a value");
        }
        String v = args[i + 1];
        switch (a) {
          case "--memory" -> memory = Sizes.parse(v, 'M');
          case "--working-set" -> ws = Sizes.parse(v, 'M');
          case "--modes" -> modes = List.of(v.split(","));
          case "--repeats" -> repeats = Integer.parseInt(v);
          case "--downtime-limit" -> downtime = Long.parseLong(v);
          case "--max-bandwidth" -> bw = Sizes.parseRate(v);
          case "--before-ms" -> before = Long.parseLong(v);
          default -> throw new IllegalArgumentException("unknown option " + a);
        }
      }
      for (String m : modes) {
        if (!m.equals("auto-converge") && !m.equals("postcopy")) {
          throw new IllegalArgumentException("unknown mode '" + m + "' (auto-converge, postcopy)");
        }
      }
      return new Options(memory, ws, modes, repeats, downtime, bw, before);
    }
  }

  record Row(String mode, int run, MigrationStatus status, String error, MigrationStats.Snapshot stats,
      double guestBeforeBytesPerSec, double guestDuringBytesPerSec, int maxThrottle, String check) {}

  public static void main(String[] args) throws Exception {
    MigrationBench.quietLogging();
    Options o = MigrationBench.parseOptions("bench-convergence", args, Options::parse);
    System.out.println("# Ferry convergence benchmark: auto-converge vs the postcopy switch");
    System.out.println();
    System.out.println("- guest: " + Sizes.human(o.memoryBytes()) + ", workingset program, working set "
        + Sizes.human(o.workingSetBytes()) + " incremented as fast as its vCPU goes");
    System.out.println("- in-process over a unix socket; downtime limit " + o.downtimeLimitMs() + " ms, max-bandwidth "
        + (o.maxBandwidthBytesPerSec() == null ? "Ferry's default" : Sizes.human(o.maxBandwidthBytesPerSec()) + "/s")
        + "; host " + Runtime.getRuntime().availableProcessors() + " cpus, load average " + MigrationBench.loadAverage());
    System.out.println();
    List<Row> rows = new ArrayList<>();
    Path dir = Files.createTempDirectory("ferry-conv-bench");
    try {
      for (String mode : o.modes()) {
        for (int run = 1; run <= o.repeats(); run++) {
          Row r = runOne(mode, run, o, dir);
          rows.add(r);
          System.err.println("bench-convergence: " + mode + " run " + run + ": " + r.status() + ", "
              + r.stats().totalTimeMs() + " ms" + (r.error() == null ? "" : " (" + r.error() + ")"));
        }
      }
    } finally {
      Files.deleteIfExists(dir.resolve("conv.sock"));
      Files.deleteIfExists(dir);
    }
    System.out.println("| mode | run | status | total ms | downtime ms | passes | precopy | postcopy | guest before | guest during | during/before | max throttle | check |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (Row r : rows) {
      MigrationStats.Snapshot s = r.stats();
      System.out.printf(Locale.ROOT, "| %s | %d | %s | %d | %s | %d | %s | %s | %s/s | %s/s | %.2f | %d%% | %s |%n",
          r.mode(), r.run(), r.status() == null ? "timeout" : r.status().qapiName(), s.totalTimeMs(),
          s.downtimeMs() >= 0 ? Long.toString(s.downtimeMs()) : "-", s.dirtySyncCount(),
          Sizes.human(s.precopyBytes()), Sizes.human(s.postcopyBytes()),
          Sizes.human(r.guestBeforeBytesPerSec()), Sizes.human(r.guestDuringBytesPerSec()),
          r.guestBeforeBytesPerSec() > 0 ? r.guestDuringBytesPerSec() / r.guestBeforeBytesPerSec() : 0,
          r.maxThrottle(), r.check());
    }
    System.out.println();
    System.out.println("- load average at end: " + MigrationBench.loadAverage());
    if (rows.stream().anyMatch(r -> MigrationBench.failed(r.check()))) {
      System.exit(1);
    }
  }

  /** Working-set passes the guest completed (cpu 0's r2 in the workingset program). */
  private static long passes(Machine m) {
    return m.cpu(0).reg(2);
  }

  static Row runOne(String mode, int run, Options o, Path dir) throws Exception {
    boolean postcopy = mode.equals("postcopy");
    ProgramOptions po = ProgramOptions.defaults().withWorkingSet(o.workingSetBytes(), 0);
    String uri = "unix:" + dir.resolve("conv.sock");
    Files.deleteIfExists(dir.resolve("conv.sock"));
    try (MachineHost src = new MachineHost(Machine.builder().memory(o.memoryBytes()).program("workingset")
            .programOptions(po).serial(OutputStream.nullOutputStream()).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(o.memoryBytes()).program("workingset")
            .programOptions(po).memPrealloc(true).serial(OutputStream.nullOutputStream()).build())) {
      src.machine().resume();
      // past the fill: the working set's counters are running
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
      while (passes(src.machine()) < 1) {
        if (System.nanoTime() > deadline) {
          throw new IOException("the workingset guest made no pass in 5 minutes");
        }
        Thread.sleep(10);
      }
      long p0 = passes(src.machine());
      long t0 = System.nanoTime();
      Thread.sleep(o.beforeMs());
      double before = (passes(src.machine()) - p0) * (double) o.workingSetBytes() * 1e9 / (System.nanoTime() - t0);
      dst.machine().awaitRamPreallocated();

      Map<MigrationCapability, Boolean> caps = new HashMap<>();
      caps.put(MigrationCapability.RETURN_PATH, true);
      if (postcopy) {
        caps.put(MigrationCapability.POSTCOPY_RAM, true);
        caps.put(MigrationCapability.FERRY_AUTO_POSTCOPY, true);
        dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      } else {
        caps.put(MigrationCapability.AUTO_CONVERGE, true);
      }
      src.migration().setCapabilities(caps);
      Map<String, Object> params = new HashMap<>();
      params.put("downtime-limit", o.downtimeLimitMs());
      if (o.maxBandwidthBytesPerSec() != null) {
        params.put("max-bandwidth", o.maxBandwidthBytesPerSec());
      }
      src.migration().setParameters(params);

      IncomingLoad incoming = IncomingLoad.listen(dst, uri);
      long startPasses = passes(src.machine());
      OutgoingMigration m = src.migration().migrate(incoming.uri());
      int maxThrottle = 0;
      MigrationStatus status;
      while ((status = m.await(20, TimeUnit.MILLISECONDS)) == null) {
        maxThrottle = Math.max(maxThrottle, m.cpuThrottlePercent());
      }
      MigrationStats.Snapshot stats = m.info();
      String error = status == MigrationStatus.COMPLETED ? null : src.migration().outgoingState().errorDesc();
      String destinationError = incoming.error(5, TimeUnit.MINUTES);
      if (error == null) {
        error = destinationError;
      }
      // the guest's progress up to the end: on the destination when postcopy ran it there
      long endPasses = postcopy && m.guestMovedAway() ? passes(dst.machine()) : passes(src.machine());
      double during = stats.totalTimeMs() > 0
          ? (endPasses - startPasses) * (double) o.workingSetBytes() * 1000 / stats.totalTimeMs() : 0;
      String check = "-";
      if (error == null) {
        if (postcopy && m.guestMovedAway()) {
          dst.machine().pause();
          StressCheck.Result r = StressCheck.check(dst.machine());
          check = r.passed() ? "workingset pattern ok on the destination" : "workingset FAILED " + r.badPageCount();
        } else {
          check = MigrationBench.digestCheck(src, dst);
        }
      }
      return new Row(mode, run, status, error, stats, before, during, maxThrottle, check);
    }
  }
}
