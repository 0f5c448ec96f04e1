package dev.ferry.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.cli.live.HtmlReport;
import dev.ferry.cli.live.MigrationReport;
import dev.ferry.cli.live.MigrationTimeline;
import dev.ferry.cli.live.PostcopySwitch;
import dev.ferry.cli.live.ProgressBar;
import dev.ferry.cli.live.Units;
import dev.ferry.qmp.qapi.MigrationInfo;
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
  @Option(names = "--memory", defaultValue = "1G", paramLabel = "SIZE", converter = CliSizes.MemorySize.class,
      description = "guest RAM: a number with K/M/G/T (powers of 1024); a bare number is MiB, as for ferry run (default ${DEFAULT-VALUE})")
  long memoryBytes;

  @Option(names = "--program", defaultValue = "stress", paramLabel = "NAME",
      description = "guest program: stress, random, fill, workingset, idle (default ${DEFAULT-VALUE})")
  String program;

  @Option(names = "--working-set", paramLabel = "SIZE", converter = CliSizes.MemorySize.class,
      description = "workingset: the RAM it keeps dirtying, K/M/G suffixes, a bare number is MiB (default: 64M)")
  Long workingSetBytes;

  @Option(names = "--working-set-base", paramLabel = "OFFSET", converter = CliSizes.ByteSize.class,
      description = "workingset: where the working set starts in guest RAM, a multiple of 4K (default: 0)")
  Long workingSetBaseBytes;

  @Option(names = "--transport", defaultValue = "tcp", paramLabel = "KIND",
      description = "tcp, unix, exec, fd or file (default ${DEFAULT-VALUE})")
  String transport;

  @Option(names = "--bandwidth", paramLabel = "RATE", converter = CliSizes.Rate.class,
      description = "max-bandwidth in bytes/s, e.g. 512M or 64M/s; 0: unlimited (default: the engine's)")
  Long bandwidthBytesPerSec;

  @Option(names = "--downtime-limit", paramLabel = "MS", description = "downtime-limit in ms (default: the engine's, 300)")
  Long downtimeLimitMs;

  @Option(names = "--dirty-rate", paramLabel = "RATE", converter = CliSizes.Rate.class,
      description = "bytes/s, e.g. 64M or 512K/s: the dirty rate of 'random' and the sweep speed of 'stress', as for ferry run")
  Long dirtyRateBytesPerSec;

  @Option(names = {"--machine", "-M"}, paramLabel = "TYPE",
      description = "machine type of both sides, as 'ferry run --machine' (default: the newest)")
  String machineType;

  @Option(names = "--xbzrle", description = "turn on the xbzrle capability")
  boolean xbzrle;

  @Option(names = "--multifd-channels", paramLabel = "N", description = "the multifd capability on both sides with N channels (tcp and unix only)")
  Integer multifdChannels;

  @Option(names = "--multifd-compression", paramLabel = "METHOD", description = "with multifd: none, zlib or zstd (implies --multifd-channels 2 when that is not given)")
  String multifdCompression;

  @Option(names = "--postcopy", description = "postcopy-ram on both sides (the destination from its start) and switch to postcopy after the first pass over RAM, or --postcopy-after; the destination's vCPUs stay held until the last page arrived, so the digest check stays exact")
  boolean postcopy;

  @Option(names = "--postcopy-after", paramLabel = "SECONDS", description = "with --postcopy: send migrate-start-postcopy once the migration has run SECONDS")
  Double postcopyAfterSeconds;

  @Option(names = "--drive", paramLabel = "id=NAME,size=SIZE",
      description = "give both machines a drive NAME of SIZE (repeatable): each its own image in the temp dir, moved by a live block migration (migrate blk=true), or one image both open with --shared-storage. With --program disk the guest writes its drives and the destination runs ferry-disk-check")
  List<String> drives = new ArrayList<>();

  @Option(names = "--block", description = "with --drive: move the drives by live block migration (migrate blk=true); the default when --drive is given without --shared-storage")
  boolean block;

  @Option(names = "--block-incremental", description = "with --drive: incremental block migration (migrate blk=true inc=true): chunks the destination's fresh image already holds (zeros) are not sent")
  boolean blockIncremental;

  @Option(names = "--shared-storage", description = "with --drive: source and destination open the same images; the stream carries no disk data (the source hands them over at switch-over)")
  boolean sharedStorage;

  @Option(names = "--keep", description = "keep the temp dir (logs, serial files, sockets, stream file); without it the dir is removed, also on Ctrl-C")
  boolean keep;

  @Option(names = "--json", description = "print the report as one JSON document on stdout (units in the key names)")
  boolean json;

  @Option(names = "--report", paramLabel = "FILE.html", description = "write a self-contained HTML page with plots over time")
  java.nio.file.Path htmlReport;

  @picocli.CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

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
      err.println("ferry demo: " + e.getMessage() + " (see 'ferry demo --help')");
      return 2;
    }
    LiveMigration lm = null;
    List<LiveMigration.Drive> driveList = new ArrayList<>();
    try {
      for (String d : drives) {
        driveList.add(drive(d));
      }
      if (sharedStorage && driveList.isEmpty()) {
        throw new IllegalArgumentException("--shared-storage needs --drive");
      }
      String blockOption = blockIncremental ? "--block-incremental" : "--block";
      if ((block || blockIncremental) && driveList.isEmpty()) {
        throw new IllegalArgumentException(blockOption + " needs --drive");
      }
      if ((block || blockIncremental) && sharedStorage) {
        throw new IllegalArgumentException("--shared-storage moves no disk data: drop " + blockOption);
      }
    } catch (IllegalArgumentException e) {
      err.println("ferry demo: " + e.getMessage() + " (see 'ferry demo --help')");
      return 2;
    }
    try {
      lm = new LiveMigration(spec, keep).machineTypes(machineType, machineType);
      lm.drives(driveList, sharedStorage);
      lm.blockIncremental(blockIncremental);
      run(lm);
      return 0;
    } catch (DemoFailure | IOException e) {
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

  /** {@code id=NAME,size=SIZE} of {@code --drive}. */
  static LiveMigration.Drive drive(String text) {
    String id = null;
    long size = -1;
    for (String kv : text.split(",")) {
      int eq = kv.indexOf('=');
      String k = eq < 0 ? kv : kv.substring(0, eq);
      String v = eq < 0 ? "" : kv.substring(eq + 1);
      switch (k) {
        case "id" -> id = v;
        case "size" -> size = dev.ferry.qmp.Sizes.parse(v, 'B');
        default -> throw new IllegalArgumentException("bad --drive '" + text + "': unknown key '" + k + "' (known: id, size)");
      }
    }
    if (id == null || id.isEmpty() || size <= 0 || size % 512 != 0) {
      throw new IllegalArgumentException("bad --drive '" + text + "': needs id=NAME and size=SIZE (a positive multiple of 512)");
    }
    return new LiveMigration.Drive(id, size);
  }

  LiveMigration.Spec spec() {
    if (!dev.ferry.machine.GuestPrograms.names().contains(program)) {
      throw new IllegalArgumentException("unknown program '" + program + "' (known: "
          + String.join(", ", dev.ferry.machine.GuestPrograms.names()) + ")");
    }
    if (machineType != null) {
      try {
        dev.ferry.machine.MachineType.byName(machineType);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--machine: " + e.getMessage(), e);
      }
    }
    if (downtimeLimitMs != null && downtimeLimitMs < 0) {
      throw new IllegalArgumentException("--downtime-limit must not be negative, got " + downtimeLimitMs);
    }
    if (workingSetBaseBytes != null && (workingSetBaseBytes < 0 || workingSetBaseBytes % 4096 != 0)) {
      throw new IllegalArgumentException("--working-set-base must be a non-negative multiple of 4 KiB, got " + workingSetBaseBytes);
    }
    if (postcopyAfterSeconds != null && !postcopy) {
      throw new IllegalArgumentException("--postcopy-after needs --postcopy");
    }
    if (postcopy) {
      new PostcopySwitch(postcopyAfterSeconds); // checks the value
      if (Transport.of(transport) == Transport.FILE || !Transport.of(transport).hasReturnPath()) {
        throw new IllegalArgumentException("--postcopy needs a transport with a return path (tcp, unix, fd), not " + transport);
      }
    }
    int channels = multifdChannels != null ? multifdChannels : multifdCompression != null ? 2 : 0;
    String compression = multifdCompression == null ? "none" : multifdCompression;
    if (multifdChannels != null && (channels < 1 || channels > 255)) {
      throw new IllegalArgumentException("--multifd-channels must be 1 to 255, got " + channels);
    }
    if (!dev.ferry.qmp.qapi.MigrationParameter.MULTIFD_COMPRESSION_VALUES.contains(compression)) {
      throw new IllegalArgumentException("--multifd-compression must be none, zlib or zstd, got " + compression);
    }
    if (channels > 0 && Transport.of(transport) != Transport.TCP && Transport.of(transport) != Transport.UNIX) {
      throw new IllegalArgumentException("--multifd-channels needs the tcp or unix transport, not " + transport);
    }
    // the destination stays paused after the load until the digest comparison is done; in postcopy
    // its vCPUs are held from RUN until the last page arrived (a paused destination does not autostart)
    return new LiveMigration.Spec(memoryBytes, program, Transport.of(transport), bandwidthBytesPerSec, downtimeLimitMs,
        dirtyRateBytesPerSec, xbzrle, true).withWorkingSet(workingSetBytes, workingSetBaseBytes).withPostcopy(postcopy)
        .withMultifd(channels, compression);
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
    if ((checked(s.program()) || diskChecked(lm)) && !lm.awaitSourcePasses(1, Duration.ofMinutes(5))) {
      throw new DemoFailure("the source's " + s.program() + " guest did not complete a pass: " + lm.source().lastLine());
    }
    Thread.sleep(warmupMs);
    long passesBefore = lm.serialPasses("source");
    err.println("  migrating to " + lm.endpoint().connectUri()
        + (checked(s.program()) ? " (guest has made " + passesBefore + " passes)" : ""));
    lm.migrate();
    ProgressBar bar = new ProgressBar(err, ProgressBar.stderrIsTerminal(), 1000);
    MigrationTimeline timeline = new MigrationTimeline();
    PostcopySwitch postcopySwitch = s.postcopy() ? new PostcopySwitch(postcopyAfterSeconds) : null;
    List<String> switchErrors = new ArrayList<>();
    MigrationInfo end;
    try {
      end = lm.awaitEnd(Duration.ofMillis(100), Duration.ofMinutes(30), i -> {
        timeline.add(i);
        bar.update(i);
        if (postcopySwitch != null && postcopySwitch.due(i)) {
          try {
            lm.startPostcopy();
          } catch (IOException e) {
            switchErrors.add(e.getMessage()); // e.g. it completed meanwhile: the report says so
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      });
    } finally {
      bar.finish();
    }
    for (String e : switchErrors) {
      err.println("ferry demo: " + e);
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
    JsonNode destinationRaw = s.postcopy() ? LiveMigration.execute(lm.destination().qmp(), "query-migrate", null) : null;
    List<String> checks = new ArrayList<>();
    LiveMigration.DigestComparison digest = lm.compareDigests();
    if (!digest.equal()) {
      throw new DemoFailure("destination differs from the stopped source: " + digest.difference());
    }
    checks.add("digest|equal|stopped source = destination " + (s.postcopy() ? "after the last page, vCPUs held since RUN (" : "before it ran (") + digest.source().algorithm() + " ram "
        + digest.source().ram() + ", devices " + digest.source().devices() + ", " + Units.bytes(digest.source().bytes()) + ")");
    if (checked(s.program())) {
      checks.add(stressCheck(lm, s.program()));
    }
    if (diskChecked(lm)) {
      JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-disk-check", null);
      if (!r.path("passed").asBoolean()) {
        throw new DemoFailure("destination disk check: " + r.path("error").asText());
      }
      checks.add("disk check|passed|" + r.path("records").asLong() + " records verified on " + lm.drives().size() + " drives ("
          + (sharedStorage ? "shared storage" : "block migration") + ")");
    }
    lm.continueDestination();
    awaitRunning(lm);
    if (checked(s.program())) {
      long seen = lm.serialPasses(lm.destination().name());
      if (!lm.awaitDestinationPass(seen, Duration.ofMinutes(2))) {
        throw new DemoFailure("the guest does not run on: no B on the destination's serial within 2 min");
      }
      checks.add("guest|runs on|the destination's serial printed B after the switch-over");
    } else {
      checks.add("guest|" + LiveMigration.runState(lm.destination()) + "|on the destination");
    }
    RawCopy.Result raw = rawCopy(lm, end.ram().transferredBytes());
    JsonNode disk = LiveMigration.execute(lm.source().qmp(), "query-migrate", null).get("disk");
    MigrationReport report = report(lm, end, raw, disk, checks);
    report.json().putObject("digest").put("equal", true).put("algorithm", digest.source().algorithm())
        .put("ram", digest.source().ram()).put("devices", digest.source().devices()).put("bytes", digest.source().bytes());
    if (s.postcopy()) {
      report.postcopy(timeline, MigrationInfo.fromJson(destinationRaw), destinationRaw);
    }
    report.timeline(timeline);
    if (json) {
      report.printJson(out);
    } else {
      out.println();
      report.print(out);
      out.println("ferry demo: OK");
    }
    if (htmlReport != null) {
      try {
        HtmlReport.write(htmlReport, report, timeline, null);
      } catch (IOException e) {
        throw new DemoFailure("cannot write --report " + htmlReport + ": " + CliErrors.describe(e));
      }
      err.println("ferry demo: report written to " + htmlReport);
    }
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

  /** Programs whose serial counts passes (B) and whose RAM {@code ferry-stress-check} checks. */
  private static boolean diskChecked(LiveMigration lm) {
    return lm.spec().program().equals("disk") && !lm.drives().isEmpty();
  }

  private static boolean checked(String program) {
    return program.equals("stress") || program.equals("workingset");
  }

  private static String stressCheck(LiveMigration lm, String program) throws IOException, InterruptedException, DemoFailure {
    JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null);
    boolean passed = r.has("passed") ? r.get("passed").asBoolean() : r.path("bad-pages").asLong(-1) == 0;
    String summary = r.path("bad-pages").asLong() == 0
        ? "memory check|passed|" + program + " pattern intact in " + Units.count(r.path("pages-checked").asLong()) + " pages"
        : program + " check FAILED: " + Units.count(r.path("bad-pages").asLong()) + " bad of "
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

  /**
   * The report: the figures every migration has, the raw copy beside them, the disks' figures
   * ({@code query-migrate}'s {@code disk}, or null), and the checks.
   */
  static MigrationReport report(LiveMigration lm, MigrationInfo end, RawCopy.Result raw, JsonNode disk, List<String> checks) {
    LiveMigration.Spec s = lm.spec();
    String title = String.format(Locale.ROOT, "Migration report: %s %s guest, %s, %s -> %s", Units.bytes(s.memoryBytes()),
        s.program(), lm.endpoint().connectUri(), lm.source(), lm.destination());
    MigrationReport r = new MigrationReport(title, end, s.downtimeLimitMs());
    ObjectNode j = r.json();
    j.put("guest-memory-bytes", s.memoryBytes()).put("program", s.program()).put("transport", s.transport().scheme())
        .put("uri", lm.endpoint().connectUri());
    double throughput = j.path("throughput-bytes-per-sec").asDouble();
    if (raw != null) {
      j.putObject("raw-copy").put("bytes", raw.bytes()).put("bytes-per-sec", Math.round(raw.bytesPerSec()))
          .put("elapsed-ns", raw.elapsedNs()).put("uri", raw.uri())
          .put("migration-fraction", raw.bytesPerSec() > 0 ? throughput / raw.bytesPerSec() : 0);
      r.row("raw copy", Units.rate(raw.bytesPerSec()),
          String.format(Locale.ROOT, "same %s over %s in %.1f ms; migration at %s of it",
              Units.bytes(raw.bytes()), raw.uri().startsWith("tcp") ? "tcp" : "a unix socket",
              raw.elapsedNs() / 1e6, Units.percent(throughput, raw.bytesPerSec())));
    } else {
      j.putNull("raw-copy");
      r.row("raw copy", "n/a", "no in-process baseline for " + s.transport().scheme());
    }
    r.disk(disk);
    for (String c : checks) {
      String[] f = c.split("\\|", 3);
      r.check(f[0], true, f[1], f[2]);
    }
    return r;
  }
}
