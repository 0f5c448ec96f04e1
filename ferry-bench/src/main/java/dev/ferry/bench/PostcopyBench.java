package dev.ferry.bench;

import dev.ferry.cli.live.Units;
import dev.ferry.machine.IncomingLoad;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.RunState;
import dev.ferry.machine.StressCheck;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.migration.PostcopyIncoming;
import dev.ferry.qmp.Sizes;
import dev.ferry.transport.RawCopy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * Postcopy benchmark after QEMU's migration guests ({@code tests/migration/guestperf}): a
 * {@code workingset} guest whose working set is dirtied as fast as its vCPU goes, migrated in the
 * same JVM over a real loopback tcp or unix socket, by precopy alone (given up after {@code
 * --precopy-limit-s}, as QEMU's run of the same guest never finishes) and by postcopy (switched
 * after {@code --postcopy-after-passes} full precopy passes). For each it prints total time, the
 * pause (postcopy: source stopped → destination's vCPUs running, both measured here; next to it the
 * source's own downtime, stop → package sent), and for postcopy the fault latency of the destination's vCPUs (p50 / p99 / max, from the
 * destination's histogram), the pages requested, and the background rate after the switch compared
 * with a raw copy of the same bytes over the same transport, measured right after (same run).
 *
 * <p>Default cases: a 1 GiB guest with a 768 MiB working set over tcp, and a 4 GiB guest with a 64
 * MiB working set over unix. Destinations commit their RAM first (--mem-prealloc). Targets (768
 * MiB case in ≤ 2 s with a pause ≤ 5 ms, fault latency p50 ≤ 50 µs and p99 ≤ 1 ms, background
 * rate ≥ 80% of the raw copy) are reported, never asserted. Correctness is checked on every run: a
 * postcopy destination, stopped after completion, must have every page and pass the {@code
 * workingset} memory check; a precopy destination that completed must have the stopped source's
 * exact digest. A failed check makes the exit code 1.
 *
 * <pre>{@code bin/bench-postcopy [--cases 1G:768M:tcp,4G:64M:unix] [--modes precopy,postcopy]
 *     [--precopy-limit-s 30] [--postcopy-after-passes 1] [--repeats 1] [--downtime-limit MS]
 *     [--dirty-rate RATE]}</pre>
 */
public final class PostcopyBench {
  private PostcopyBench() {}

  /** A guest size, its working set and the transport. */
  record Case(long memoryBytes, long workingSetBytes, String transport) {
    static Case parse(String s) {
      String[] f = s.split(":");
      if (f.length != 3 || !(f[2].equals("tcp") || f[2].equals("unix"))) {
        throw new IllegalArgumentException("a case is SIZE:WORKING-SET:tcp|unix, not " + s);
      }
      return new Case(Sizes.parse(f[0], 'M'), Sizes.parse(f[1], 'M'), f[2]);
    }

    @Override
    public String toString() {
      return Units.bytes(memoryBytes) + " / " + Units.bytes(workingSetBytes) + " " + transport;
    }
  }

  /** @param dirtyRateBytesPerSec the workingset guest's pace (bytes of pages per second), 0 = as fast as its vCPU goes */
  record Options(List<Case> cases, List<String> modes, long precopyLimitS, int postcopyAfterPasses, int repeats,
      long downtimeLimitMs, long dirtyRateBytesPerSec) {
    static Options parse(String[] args) {
      List<Case> cases = List.of(Case.parse("1G:768M:tcp"), Case.parse("4G:64M:unix"));
      List<String> modes = List.of("precopy", "postcopy");
      long limit = 30;
      int after = 1;
      int repeats = 1;
      long downtime = 300;
      long dirtyRate = 0;
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        if (a.equals("-h") || a.equals("--help")) {
          System.out.println("usage: bench-postcopy [--cases 1G:768M:tcp,4G:64M:unix] [--modes precopy,postcopy]"
              + " [--precopy-limit-s 30] [--postcopy-after-passes 1] [--repeats 1] [--downtime-limit MS] [--dirty-rate RATE]");
          System.exit(0);
        }
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(a + " needs a value");
        }
        String v = args[++i];
        switch (a) {
          case "--cases" -> cases = split(v).stream().map(Case::parse).toList();
          case "--modes" -> modes = split(v);
          case "--precopy-limit-s" -> limit = Long.parseLong(v);
          case "--postcopy-after-passes" -> after = Integer.parseInt(v);
          case "--repeats" -> repeats = Integer.parseInt(v);
          case "--downtime-limit" -> downtime = Long.parseLong(v);
          case "--dirty-rate" -> dirtyRate = Sizes.parse(v, 'M');
          default -> throw new IllegalArgumentException("unknown option " + a);
        }
      }
      for (String m : modes) {
        if (!m.equals("precopy") && !m.equals("postcopy")) {
          throw new IllegalArgumentException("mode must be precopy or postcopy: " + m);
        }
      }
      if (repeats < 1 || after < 1 || limit < 1) {
        throw new IllegalArgumentException("--repeats, --postcopy-after-passes and --precopy-limit-s must be at least 1");
      }
      return new Options(cases, modes, limit, after, repeats, downtime, dirtyRate);
    }

    private static List<String> split(String v) {
      return Arrays.stream(v.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
    }
  }

  /**
   * One measured migration.
   *
   * @param pauseNs source stopped → destination's vCPUs running (postcopy), the source's downtime otherwise
   * @param postcopyNs postcopy-active → completed on the source, or 0
   * @param faultLatencyNs the destination's fault latency histogram (postcopy), or null
   */
  record Row(Case c, String mode, int run, String status, MigrationStats.Snapshot stats, long pauseNs, long postcopyNs,
      Histogram faultLatencyNs, long faults, String check, RawCopy.Result raw) {
    double backgroundBytesPerSec() {
      return postcopyNs > 0 ? stats.postcopyBytes() * 1e9 / postcopyNs : 0;
    }
  }

  public static void main(String[] args) throws Exception {
    MigrationBench.quietLogging();
    Options o = MigrationBench.parseOptions("bench-postcopy", args, Options::parse);
    System.out.println("# Ferry postcopy benchmark (workingset guest)");
    System.out.println();
    System.out.println("- mode: in-process (both machines in one JVM, stream over a real loopback tcp / unix socket);"
        + " destinations commit their RAM first (--mem-prealloc); raw copy = RawCopy of the postcopy bytes over the"
        + " same transport, right after each run");
    System.out.println("- host: " + Runtime.getRuntime().availableProcessors() + " cpus, load average "
        + MigrationBench.loadAverage() + " at start, JDK " + Runtime.version());
    System.out.println("- precopy given up after " + o.precopyLimitS() + " s; postcopy switched after "
        + o.postcopyAfterPasses() + " full precopy pass(es); downtime limit " + o.downtimeLimitMs() + " ms; guest "
        + (o.dirtyRateBytesPerSec() == 0 ? "unpaced" : "paced at " + Units.rate(o.dirtyRateBytesPerSec())));
    System.out.println();
    List<Row> rows = new ArrayList<>();
    Path dir = Files.createTempDirectory("ferry-bench-postcopy");
    try {
      for (Case c : o.cases()) {
        for (String mode : o.modes()) {
          for (int run = 1; run <= o.repeats(); run++) {
            Row r = runOne(c, mode, run, o, dir);
            rows.add(r);
            System.err.println("bench-postcopy: " + c + " " + mode + " run " + run + ": " + r.status() + ", "
                + r.stats().totalTimeMs() + " ms, " + r.check());
          }
        }
      }
    } finally {
      MigrationBench.deleteTree(dir);
    }
    printTable(rows);
    System.out.println();
    System.out.println("- load average at end: " + MigrationBench.loadAverage());
    List<Row> bad = rows.stream().filter(r -> MigrationBench.failed(r.check())).toList();
    for (Row r : bad) {
      System.err.println("bench-postcopy: " + r.c() + " " + r.mode() + " run " + r.run() + ": " + r.check());
    }
    if (!bad.isEmpty()) {
      System.exit(1);
    }
  }

  static Row runOne(Case c, String mode, int run, Options o, Path dir) throws Exception {
    boolean postcopy = mode.equals("postcopy");
    String listen = MigrationBench.uri(c.transport(), dir.resolve("pc.sock"));
    ProgramOptions po = ProgramOptions.defaults().withWorkingSet(c.workingSetBytes(), 0)
        .withWorkingSetRateBytesPerSec(o.dirtyRateBytesPerSec());
    MigrationBench.PassCounter passes = new MigrationBench.PassCounter();
    MigrationStats.Snapshot stats;
    String status;
    String check;
    long pauseNs;
    long postcopyNs = 0;
    Histogram latency = null;
    long faults = 0;
    try (MachineHost src = new MachineHost(
            Machine.builder().memory(c.memoryBytes()).program("workingset").programOptions(po).serial(passes).build());
        MachineHost dst = new MachineHost(
            Machine.builder().memory(c.memoryBytes()).program("workingset").programOptions(po).memPrealloc(true).build())) {
      src.machine().resume();
      // past the fill and one pass over the working set
      long warm = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
      while (passes.passes.get() < 1 && System.nanoTime() < warm) {
        Thread.sleep(10);
      }
      dst.machine().awaitRamPreallocated();
      if (postcopy) {
        src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
        dst.migration().setCapabilities(
            Map.of(MigrationCapability.POSTCOPY_RAM, true, MigrationCapability.POSTCOPY_BLOCKTIME, true));
      } else {
        src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
      }
      src.migration().setParameters(Map.of("downtime-limit", o.downtimeLimitMs()));
      AtomicLong stoppedNs = new AtomicLong();
      AtomicLong switchedNs = new AtomicLong();
      AtomicLong completedNs = new AtomicLong();
      AtomicLong dstRunningNs = new AtomicLong();
      AtomicLong dstListenNs = new AtomicLong();
      dst.migration().addListener(
          new MigrationListener() {
            @Override
            public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
              if (to == MigrationStatus.POSTCOPY_ACTIVE) {
                dstListenNs.compareAndSet(0, System.nanoTime());
              }
            }
          });
      src.migration().addListener(
          new MigrationListener() {
            @Override
            public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
              long now = System.nanoTime();
              if (to == MigrationStatus.POSTCOPY_ACTIVE) {
                switchedNs.compareAndSet(0, now);
              } else if (to == MigrationStatus.COMPLETED) {
                completedNs.compareAndSet(0, now);
              }
            }
          });
      src.machine().addRunStateListener((from, to) -> {
        if (from == RunState.RUNNING) {
          stoppedNs.compareAndSet(0, System.nanoTime());
        }
      });
      dst.machine().addRunStateListener((from, to) -> {
        if (to == RunState.RUNNING) {
          dstRunningNs.compareAndSet(0, System.nanoTime());
        }
      });
      IncomingLoad incoming = IncomingLoad.listen(dst, listen);
      OutgoingMigration m = src.migration().migrate(incoming.uri());
      MigrationStatus end;
      if (postcopy) {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
        // the pass counter is 1 from setup on and counts each dirty sync after a full pass
        while (m.info().passes() <= o.postcopyAfterPasses() && !m.state().status().isFinal()
            && System.nanoTime() < deadline) {
          Thread.sleep(1);
        }
        if (m.state().status() == MigrationStatus.ACTIVE) {
          src.migration().startPostcopy(); // as QEMU, completes as precopy when what is left fits the limit
        }
        end = m.await(10, TimeUnit.MINUTES);
      } else {
        end = m.await(o.precopyLimitS(), TimeUnit.SECONDS);
      }
      stats = m.info();
      if (end == MigrationStatus.COMPLETED) {
        incoming.error(5, TimeUnit.MINUTES);
        status = switchedNs.get() != 0 ? "completed (postcopy)" : "completed";
        if (postcopy && switchedNs.get() != 0) {
          PostcopyIncoming pc = dst.migration().incoming().postcopy();
          pauseNs = dstRunningNs.get() - stoppedNs.get();
          System.err.printf(Locale.ROOT,
              "bench-postcopy: pause: source stopped +0, package sent +%d ms (source downtime), destination postcopy-active"
                  + " +%.2f ms, destination running +%.2f ms%n",
              stats.downtimeMs(), (dstListenNs.get() - stoppedNs.get()) / 1e6, pauseNs / 1e6);
          postcopyNs = completedNs.get() - switchedNs.get();
          latency = pc.faultLatencyNs();
          faults = pc.faults();
          dst.machine().pause();
          StressCheck.Result r = StressCheck.check(dst.machine());
          check = (pc.missingPages() == 0 ? "all pages" : "MISSING " + pc.missingPages() + " pages (FAILED)")
              + (r.passed() ? ", workingset check ok" : ", workingset check FAILED: " + r.summary());
        } else {
          pauseNs = stats.downtimeMs() * 1_000_000;
          check = MigrationBench.digestCheck(src, dst);
        }
      } else {
        pauseNs = -1;
        status = end == null ? "not done in " + o.precopyLimitS() + " s" : end.qapiName();
        check = "-";
        m.cancel();
        m.await(1, TimeUnit.MINUTES);
        try {
          incoming.error(1, TimeUnit.MINUTES);
        } catch (Exception e) {
          // the cancelled migration's destination fails: expected
        }
        if (end != null) {
          check = "FAILED: " + src.migration().outgoingState().errorDesc();
        }
      }
    }
    // the bytes after the switch (postcopy), or what precopy sent (at most 1 GiB: a rate, not a replay)
    long rawBytes = postcopyNs > 0 ? stats.postcopyBytes() : Math.min(1L << 30, stats.transferredBytes());
    RawCopy.Result raw = MigrationBench.rawCopy(c.transport(), dir, Math.max(64L << 20, rawBytes));
    return new Row(c, mode, run, status, stats, pauseNs, postcopyNs, latency, faults, check, raw);
  }

  static String micros(Histogram h, double percentile) {
    return h == null || h.getTotalCount() == 0 ? "-" : String.format(Locale.ROOT, "%.0f µs", h.getValueAtPercentile(percentile) / 1e3);
  }

  static void printTable(List<Row> rows) {
    System.out.println("| guest / working set | transport | mode | run | status | total | sent | pause | source downtime | postcopy time"
        + " | requested | faults | fault p50 | fault p99 | fault max | background rate | raw copy | background/raw | check |");
    System.out.println("|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for (Row r : rows) {
      MigrationStats.Snapshot s = r.stats();
      boolean pc = r.postcopyNs() > 0;
      double rawRate = r.raw().bytesPerSec();
      System.out.println(String.join(" | ",
          "| " + Units.bytes(r.c().memoryBytes()) + " / " + Units.bytes(r.c().workingSetBytes()),
          r.c().transport(),
          r.mode(),
          Integer.toString(r.run()),
          r.status(),
          s.totalTimeMs() + " ms",
          Units.bytes(s.transferredBytes()),
          r.pauseNs() < 0 ? "-" : String.format(Locale.ROOT, "%.2f ms", r.pauseNs() / 1e6),
          s.downtimeMs() < 0 ? "-" : s.downtimeMs() + " ms",
          pc ? String.format(Locale.ROOT, "%.0f ms", r.postcopyNs() / 1e6) : "-",
          pc ? Long.toString(s.postcopyRequests()) : "-",
          pc ? Long.toString(r.faults()) : "-",
          micros(r.faultLatencyNs(), 50),
          micros(r.faultLatencyNs(), 99),
          r.faultLatencyNs() == null || r.faultLatencyNs().getTotalCount() == 0
              ? "-" : String.format(Locale.ROOT, "%.0f µs", r.faultLatencyNs().getMaxValue() / 1e3),
          pc ? Units.rate(r.backgroundBytesPerSec()) : "-",
          Units.rate(rawRate),
          pc ? Units.percent(r.backgroundBytesPerSec(), rawRate) : "-",
          r.check() + " |"));
    }
  }
}
