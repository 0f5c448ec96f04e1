package dev.ferry.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.cli.live.ProgressBar;
import dev.ferry.cli.live.Units;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.transport.RawCopy;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry demo}: a live migration of a running guest between two {@code ferry run} processes
 * of this installation, end to end — start a destination and a source, let the guest run, migrate
 * while drawing progress, compare the stopped source's exact digest with the destination's (started
 * paused, so taken after the load and before its guest first runs), check the stress pattern, let
 * the guest run on there, and report the figures next to a raw copy of the same bytes over the same
 * transport. Exit code 0 only when the migration completed and every check passed.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = {
      "Live-migrates a running guest between two ferry processes and reports the figures.",
      "Default: a 1 GiB stress guest over tcp on loopback. Exit code 0 only when the migration",
      "completed, the destination's memory and device state equal the stopped source's",
      "(exact digest), and the guest runs on there."
    })
public final class DemoCommand implements Callable<Integer> {
  @Option(names = "--memory", defaultValue = "1G", paramLabel = "SIZE", description = "guest RAM (default ${DEFAULT-VALUE})")
  String memory;

  @Option(names = "--program", defaultValue = "stress", paramLabel = "NAME",
      description = "guest program: stress, random, fill, idle (default ${DEFAULT-VALUE})")
  String program;

  @Option(names = "--transport", defaultValue = "tcp", paramLabel = "KIND",
      description = "tcp, unix, exec, fd or file (default ${DEFAULT-VALUE})")
  String transport;

  @Option(names = "--bandwidth", paramLabel = "SIZE", description = "max-bandwidth in bytes/s, e.g. 512M (default: the engine's)")
  String bandwidth;

  @Option(names = "--downtime-limit", paramLabel = "MS", description = "downtime-limit in ms (default: the engine's, 300)")
  Long downtimeLimitMs;

  @Option(names = "--dirty-rate", paramLabel = "SIZE", description = "dirty rate of the random program in bytes/s, e.g. 64M")
  String dirtyRate;

  @Option(names = "--xbzrle", description = "turn on the xbzrle capability")
  boolean xbzrle;

  @Option(names = "--keep", description = "keep the temp dir (logs, serial files, sockets, stream file)")
  boolean keep;

  @Option(names = "--warmup-ms", defaultValue = "500", paramLabel = "MS",
      description = "how long the guest runs before the migration (stress: after its first full pass; default ${DEFAULT-VALUE})")
  long warmupMs;

  private final PrintStream out = System.out;
  private final PrintStream err = System.err;

  /** Why the demo failed: one line. */
  static final class DemoFailure extends Exception {
    DemoFailure(String message) {
      super(message);
    }
  }

  @Override
  public Integer call() {
    LiveMigration.Spec spec;
    try {
      spec = spec();
    } catch (IllegalArgumentException e) {
      err.println("ferry demo: " + e.getMessage());
      return 2;
    }
    LiveMigration lm = null;
    try {
      lm = new LiveMigration(spec, keep);
      run(lm);
      return 0;
    } catch (DemoFailure e) {
      err.println("ferry demo: FAILED: " + e.getMessage());
      return 1;
    } catch (IOException e) {
      err.println("ferry demo: FAILED: " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      err.println("ferry demo: interrupted");
      return 130;
    } finally {
      if (lm != null) {
        lm.close();
        if (keep) {
          err.println("ferry demo: files kept in " + lm.dir());
        }
      }
    }
  }

  LiveMigration.Spec spec() {
    long mem = Units.parseSize(memory);
    if (mem < 4096 || mem % 4096 != 0) {
      throw new IllegalArgumentException("--memory must be a positive multiple of 4 KiB: " + memory);
    }
    if (!List.of("stress", "random", "fill", "idle").contains(program)) {
      throw new IllegalArgumentException("unknown program '" + program + "' (stress, random, fill, idle)");
    }
    Long bw = bandwidth == null ? null : Units.parseSize(bandwidth);
    if (bw != null && bw <= 0) {
      throw new IllegalArgumentException("--bandwidth must be positive");
    }
    if (downtimeLimitMs != null && downtimeLimitMs < 0) {
      throw new IllegalArgumentException("--downtime-limit must not be negative");
    }
    Long dr = dirtyRate == null ? null : Units.parseSize(dirtyRate);
    // the destination stays paused after the load until the digest comparison is done
    return new LiveMigration.Spec(mem, program, Transport.of(transport), bw, downtimeLimitMs, dr, xbzrle, true);
  }

  private void run(LiveMigration lm) throws IOException, InterruptedException, DemoFailure {
    LiveMigration.Spec s = lm.spec();
    Transport t = s.transport();
    err.printf(Locale.ROOT, "ferry demo: live migration of a %s %s guest over %s, between two processes%n",
        Units.bytes(s.memoryBytes()), s.program(), t.scheme());
    if (t != Transport.FILE) {
      lm.startDestination();
      err.println("  destination  " + lm.destination() + ", listening on " + lm.endpoint().listenUri()
          + (lm.endpoint().connectUri().equals(lm.endpoint().listenUri()) ? "" : " -> " + lm.endpoint().connectUri()));
    }
    lm.startSource();
    err.println("  source       " + lm.source() + ", guest running");
    if (s.program().equals("stress") && !lm.awaitSourcePasses(1, Duration.ofMinutes(5))) {
      throw new DemoFailure("the source's stress guest did not complete a pass: " + lm.source().lastLine());
    }
    Thread.sleep(warmupMs);
    long passesBefore = lm.serialPasses("source");
    err.println("  migrating to " + lm.endpoint().connectUri()
        + (s.program().equals("stress") ? " (guest has made " + passesBefore + " passes)" : ""));
    lm.migrate();
    ProgressBar bar = new ProgressBar(err, ProgressBar.stderrIsTerminal(), 1000);
    MigrationInfo end;
    try {
      end = lm.awaitEnd(Duration.ofMillis(100), Duration.ofMinutes(30), bar::update);
    } finally {
      bar.finish();
    }
    if (!"completed".equals(end.status().qapiName())) {
      throw new DemoFailure("migration " + end.status().qapiName()
          + (end.errorDesc() == null ? "" : ": " + end.errorDesc()));
    }
    if (t == Transport.FILE) {
      lm.startDestination();
      err.println("  destination  " + lm.destination() + ", loading " + lm.endpoint().listenUri());
    }
    lm.awaitDestinationLoaded(Duration.ofMinutes(5));
    List<String> checks = new ArrayList<>();
    LiveMigration.DigestComparison digest = lm.compareDigests();
    if (!digest.equal()) {
      throw new DemoFailure("destination differs from the stopped source: " + digest.difference());
    }
    checks.add("digest|equal|stopped source = destination before it ran (" + digest.source().algorithm() + " ram "
        + digest.source().ram() + ", devices " + digest.source().devices() + ", " + Units.bytes(digest.source().bytes()) + ")");
    if (s.program().equals("stress")) {
      checks.add(stressCheck(lm));
    }
    lm.continueDestination();
    awaitRunning(lm);
    if (s.program().equals("stress")) {
      long seen = lm.serialPasses(lm.destination().name());
      if (!lm.awaitDestinationPass(seen, Duration.ofMinutes(2))) {
        throw new DemoFailure("the guest does not run on: no B on the destination's serial within 2 min");
      }
      checks.add("guest|runs on|the destination's serial printed B after the switch-over");
    } else {
      checks.add("guest|" + LiveMigration.runState(lm.destination()) + "|on the destination");
    }
    RawCopy.Result raw = rawCopy(lm, end.ram().transferredBytes());
    report(lm, end, raw, checks);
  }

  private void awaitRunning(LiveMigration lm) throws IOException, InterruptedException, DemoFailure {
    long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
    String st;
    while (!(st = LiveMigration.runState(lm.destination())).equals("running")) {
      if (System.nanoTime() - deadline > 0) {
        throw new DemoFailure("the destination is " + st + ", not running, after the migration");
      }
      if (!lm.destination().alive()) {
        throw new DemoFailure("the destination exited: " + lm.destination().lastLine());
      }
      Thread.sleep(20);
    }
  }

  private static String stressCheck(LiveMigration lm) throws IOException, InterruptedException, DemoFailure {
    JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null);
    boolean passed = r.has("passed") ? r.get("passed").asBoolean() : r.path("bad-pages").asLong(-1) == 0;
    String summary = r.path("bad-pages").asLong() == 0
        ? "memory check|passed|stress pattern intact in " + Units.count(r.path("pages-checked").asLong()) + " pages"
        : "stress check FAILED: " + Units.count(r.path("bad-pages").asLong()) + " bad of "
            + Units.count(r.path("pages-checked").asLong()) + " pages, first " + r.path("first-bad");
    if (!passed) {
      throw new DemoFailure("destination memory check: " + summary);
    }
    return summary;
  }

  /** The same byte count over the same kind of channel, in this process. */
  private static RawCopy.Result rawCopy(LiveMigration lm, long bytes) throws IOException, InterruptedException {
    return switch (lm.spec().transport()) {
      case TCP -> RawCopy.measure("tcp:127.0.0.1:0", bytes);
      case UNIX, FD -> RawCopy.measure("unix:" + lm.dir().resolve("raw.sock"), bytes);
      case EXEC, FILE -> null;
    };
  }

  private void report(LiveMigration lm, MigrationInfo end, RawCopy.Result raw, List<String> checks) {
    MigrationStats ram = end.ram();
    long total = end.totalTimeMs() == null ? 0 : end.totalTimeMs();
    double throughput = total > 0 ? ram.transferredBytes() * 1000.0 / total : 0;
    LiveMigration.Spec s = lm.spec();
    out.println();
    out.printf(Locale.ROOT, "Migration report: %s %s guest, %s, %s -> %s%n", Units.bytes(s.memoryBytes()), s.program(),
        lm.endpoint().connectUri(), lm.source(), lm.destination());
    row("status", "completed", "");
    row("total time", Units.millis(total), "");
    row("downtime", Units.millis(end.downtimeMs() == null ? -1 : end.downtimeMs()),
        "limit " + (s.downtimeLimitMs() == null ? "300 ms (default)" : s.downtimeLimitMs() + " ms"));
    row("setup time", Units.millis(end.setupTimeMs() == null ? 0 : end.setupTimeMs()), "");
    row("transferred", Units.bytes(ram.transferredBytes()), Units.count(ram.transferredBytes()) + " bytes");
    row("zero pages", Units.count(ram.duplicatePages()), Units.bytes(ram.duplicatePages() * ram.pageSizeBytes()) + " of RAM");
    row("normal pages", Units.count(ram.normalPages()), Units.bytes(ram.normalBytes()));
    row("throughput", Units.rate(throughput), String.format(Locale.ROOT, "%.0f Mbit/s", throughput * 8 / 1e6));
    if (raw != null) {
      row("raw copy", Units.rate(raw.bytesPerSec()),
          String.format(Locale.ROOT, "same %s over %s in %.1f ms; migration at %s of it",
              Units.bytes(raw.bytes()), raw.uri().startsWith("tcp") ? "tcp" : "a unix socket",
              raw.elapsedNs() / 1e6, Units.percent(throughput, raw.bytesPerSec())));
    } else {
      row("raw copy", "n/a", "no in-process baseline for " + s.transport().scheme());
    }
    row("dirty syncs", Long.toString(ram.dirtySyncCount()), "");
    for (String c : checks) {
      String[] f = c.split("\\|", 3);
      row(f[0], f[1], f[2]);
    }
    out.println("ferry demo: OK");
  }

  private void row(String name, String value, String note) {
    out.printf(Locale.ROOT, "  %-12s %14s%s%n", name, value, note.isEmpty() ? "" : "   " + note);
  }
}
