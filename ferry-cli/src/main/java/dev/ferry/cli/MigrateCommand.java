package dev.ferry.cli;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationSettings;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import java.io.IOException;
import java.io.PrintStream;
import dev.ferry.cli.live.HtmlReport;
import dev.ferry.cli.live.MigrationReport;
import dev.ferry.cli.live.MigrationTimeline;
import dev.ferry.cli.live.PostcopySwitch;
import dev.ferry.cli.live.ProgressBar;
import dev.ferry.cli.live.Units;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import dev.ferry.transport.TlsCredentials;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry migrate --qmp URI [options] DEST_URI}: drives a running source through its QMP
 * monitor exactly as an external QMP tool would — {@code migrate-set-capabilities} and {@code
 * migrate-set-parameters} for the options given, {@code migrate}, then {@code query-migrate} about
 * ten times a second — with a progress line on stderr and a report on stdout at the end. Ctrl-C
 * sends {@code migrate_cancel}. {@code --json} prints the report as one JSON document, {@code
 * --report FILE.html} writes a page with plots over time.
 *
 * <p>Options that change capabilities or parameters change them on the source for good (as QEMU's
 * {@code migrate-set-*} do); the command says so in one line. {@code --reset} first turns every
 * capability off and puts every parameter back to its default.
 *
 * <p>Exit codes: 0 only when the migration completed; 1 when it failed or was cancelled, or the
 * monitor could not be reached or refused a command (the error on stderr); 2 for a bad option.
 */
@Command(
    name = "migrate",
    mixinStandardHelpOptions = true,
    description = {
      "Migrate a running machine through its QMP monitor, with progress and a report.",
      "Capabilities and parameters set by options stay set on the source (as in QEMU); --reset restores the defaults first."
    })
public final class MigrateCommand implements Callable<Integer> {
  private static final long POLL_MS = 100;

  @Option(names = "--qmp", required = true, paramLabel = "URI", description = "the source's QMP monitor: unix:PATH or tcp:HOST:PORT")
  String qmp;

  @Parameters(index = "0", paramLabel = "DEST_URI", description = "where to migrate: tcp:HOST:PORT, unix:PATH, exec:CMD, fd:N, file:PATH")
  String destination;

  @Option(names = "--bandwidth", paramLabel = "RATE", converter = CliSizes.Rate.class, description = "max-bandwidth in bytes/s, e.g. 512M or 64M/s (0: unlimited)")
  Long bandwidthBytesPerSec;

  @Option(names = "--downtime-limit", paramLabel = "MS", description = "downtime-limit in milliseconds")
  Long downtimeLimitMs;

  @Option(names = "--xbzrle", description = "turn the xbzrle capability on")
  boolean xbzrle;

  @Option(names = "--mapped-ram", description = "turn the mapped-ram capability on (QEMU 9.0; DEST_URI must be file:PATH, and the destination needs it too, e.g. ferry run --mapped-ram --incoming file:PATH): every page at a fixed offset of the file, so the file stays within RAM plus bitmaps and device state however busy the guest")
  boolean mappedRam;

  @Option(names = {"--block", "-b"}, description = "copy the disks too, for this migration only (QMP migrate blk=true, HMP migrate -b): a live block migration in QEMU 7.2's format, for a destination with its own images (not shared storage); the report adds the disk figures")
  boolean block;

  @Option(names = {"--block-incremental", "-i"}, description = "as --block, but skip the chunks the destination's base image already holds (QMP migrate blk=true inc=true, HMP migrate -i): for Ferry's raw images the base is the fresh image, all zeros, so chunks that read as zeros are not sent")
  boolean blockIncremental;

  @Option(names = "--xbzrle-cache-size", paramLabel = "SIZE", converter = CliSizes.ByteSize.class, description = "xbzrle-cache-size in bytes, e.g. 64M")
  Long xbzrleCacheSizeBytes;

  @Option(names = "--return-path", description = "turn the return-path capability on")
  boolean returnPath;

  @Option(names = "--auto-converge", description = "turn the auto-converge capability on: throttle the guest's vCPUs while it dirties memory faster than the migration sends it")
  boolean autoConverge;

  @Option(names = "--postcopy", description = "turn the postcopy-ram capability on (the destination needs it too, e.g. ferry run --postcopy) and switch to postcopy: after the first pass over RAM, or --postcopy-after, or as soon as precopy stops converging (ferry-auto-postcopy)")
  boolean postcopy;

  @Option(names = "--postcopy-after", paramLabel = "SECONDS", description = "with --postcopy: send migrate-start-postcopy once the migration has run SECONDS (default: right after the first pass over RAM)")
  Double postcopyAfterSeconds;

  @Option(
      names = {"--resume", "-r"},
      description = "resume a postcopy-paused migration (QMP migrate resume=true): the source connects to DEST_URI, where the destination listens after migrate-recover (ferry monitor DST migrate_recover URI); no capability or parameter options")
  boolean resume;

  @Option(names = "--reset", description = "first turn every capability off and put every parameter back to its default")
  boolean reset;

  @Option(names = "--quiet", description = "no progress line")
  boolean quiet;

  @Option(names = "--json", description = "print the report as one JSON document on stdout (units in the key names)")
  boolean json;

  @Option(names = "--report", paramLabel = "FILE.html", description = "write a self-contained HTML page with plots over time")
  Path htmlReport;

  @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

  @Option(
      names = "--tls-creds",
      paramLabel = "DIR",
      description = "migrate inside TLS: the source loads client credentials from DIR (ca-cert.pem, client-cert.pem, client-key.pem; a path on the source's host) as object " + TLS_OBJECT_ID + " and sets tls-creds")
  Path tlsCredsDir;

  @Option(names = "--tls-hostname", paramLabel = "NAME", description = "the name the destination's certificate must carry (default: the host of DEST_URI)")
  String tlsHostname;

  @Option(names = "--qmp-tls-creds", paramLabel = "DIR", description = "reach a tcp monitor inside TLS with the client credentials in DIR")
  Path qmpTlsCredsDir;

  /** The id under which {@code --tls-creds} creates the source's credentials object. */
  static final String TLS_OBJECT_ID = "ferry-migrate-tls";

  private final CountDownLatch ended = new CountDownLatch(1);

  @Override
  public Integer call() {
    PrintStream err = System.err;
    PrintStream out = System.out;
    if (downtimeLimitMs != null && downtimeLimitMs < 0) {
      err.println("ferry migrate: --downtime-limit must not be negative, got " + downtimeLimitMs + " (see 'ferry migrate --help')");
      return 2;
    }
    if (postcopyAfterSeconds != null && !postcopy) {
      err.println("ferry migrate: --postcopy-after needs --postcopy (see 'ferry migrate --help')");
      return 2;
    }
    if (resume && (xbzrle || mappedRam || returnPath || postcopy || autoConverge || reset || bandwidthBytesPerSec != null || downtimeLimitMs != null
        || xbzrleCacheSizeBytes != null || tlsCredsDir != null || tlsHostname != null || block || blockIncremental)) {
      err.println("ferry migrate: --resume continues the paused migration with its own capabilities and parameters;"
          + " drop the other migration options (see 'ferry migrate --help')");
      return 2;
    }
    PostcopySwitch postcopySwitch = null;
    if (postcopy) {
      try {
        postcopySwitch = new PostcopySwitch(postcopyAfterSeconds);
      } catch (IllegalArgumentException e) {
        err.println("ferry migrate: " + e.getMessage() + " (see 'ferry migrate --help')");
        return 2;
      }
    }
    QmpClient client;
    try {
      TlsCredentials monitorCreds =
          qmpTlsCredsDir == null ? null : TlsCredentials.load("ferry-monitor", qmpTlsCredsDir, TlsCredentials.Endpoint.CLIENT, true);
      client = QmpClient.connect(qmp, monitorCreds);
    } catch (IllegalArgumentException e) {
      err.println("ferry migrate: bad --qmp '" + qmp + "': " + e.getMessage() + " (see 'ferry migrate --help')");
      return 2;
    } catch (IOException | RuntimeException e) {
      err.println("ferry migrate: cannot reach the QMP monitor " + qmp + ": " + CliErrors.describe(e));
      return 1;
    }
    Thread hook = Thread.ofPlatform().unstarted(() -> cancelOnSignal(client));
    Runtime.getRuntime().addShutdownHook(hook);
    try (client) {
      MigrationTimeline timeline = new MigrationTimeline();
      MigrationInfo info;
      if (resume) {
        info = resume(client, err, timeline);
      } else {
        setUp(client, err);
        client.execute("migrate", migrateArguments());
        info = poll(client, err, timeline, postcopySwitch);
      }
      MigrationReport report = new MigrationReport("Migration report: to " + destination, info, effectiveDowntimeLimit(client));
      report.disk(client.execute("query-migrate").get("disk"));
      if (postcopy) {
        report.postcopy(timeline, null, null);
      }
      report.timeline(timeline);
      if (json) {
        report.printJson(out);
      } else {
        report.print(out);
      }
      if (htmlReport != null) {
        try {
          HtmlReport.write(htmlReport, report, timeline, null);
        } catch (IOException e) {
          err.println("ferry migrate: cannot write --report " + htmlReport + ": " + CliErrors.describe(e));
          return 1;
        }
      }
      if (info.status() == MigrationStatus.COMPLETED) {
        return 0;
      }
      if (info.status() == MigrationStatus.FAILED) {
        err.println("ferry migrate: migration failed: " + (info.errorDesc() != null ? info.errorDesc() : "no error description"));
      } else if (info.status() == MigrationStatus.POSTCOPY_PAUSED) {
        err.println("ferry migrate: migration postcopy-paused: "
            + (info.errorDesc() != null ? info.errorDesc() : "no error description")
            + " (ferry monitor DST_QMP migrate_recover URI, then ferry migrate --resume --qmp " + qmp + " URI)");
      } else {
        err.println("ferry migrate: migration " + (info.status() == null ? "ended" : info.status().qapiName()));
      }
      return 1;
    } catch (QmpError e) {
      err.println("ferry migrate: " + e.desc());
      return 1;
    } catch (IOException e) {
      err.println("ferry migrate: lost the QMP monitor " + qmp + ": " + CliErrors.describe(e));
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      err.println("ferry migrate: interrupted");
      return 1;
    } finally {
      ended.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down on a signal: the hook is running
      }
    }
  }

  /** {@code migrate}'s arguments: the URI, and {@code blk}/{@code inc} for --block/--block-incremental. */
  ObjectNode migrateArguments() {
    ObjectNode args = JsonNodeFactory.instance.objectNode().put("uri", destination);
    if (block || blockIncremental) {
      args.put("blk", true);
    }
    if (blockIncremental) {
      args.put("inc", true);
    }
    return args;
  }

  /** The downtime limit the source used (null when it is the default), for the report. */
  private Long effectiveDowntimeLimit(QmpClient client) {
    try {
      long v = client.execute("query-migrate-parameters").path("downtime-limit").asLong(300);
      return v == dev.ferry.migration.MigrationParameters.DEFAULT.downtimeLimitMs() ? null : v;
    } catch (IOException | QmpError e) {
      return downtimeLimitMs;
    }
  }

  void setUp(QmpClient client, PrintStream err) throws IOException, QmpError {
    if (reset) {
      MigrationSettings defaults = new MigrationSettings();
      for (var c : client.execute("query-migrate-capabilities")) {
        if (c.path("state").asBoolean()) {
          defaults.capability(MigrationCapabilityStatus.fromJson(c).capability(), false);
        }
      }
      var current = client.execute("query-migrate-parameters");
      for (Map.Entry<String, Object> e : dev.ferry.migration.MigrationParameters.DEFAULT.toMap().entrySet()) {
        if (current.has(e.getKey()) && (e.getValue() instanceof Boolean || e.getValue() instanceof Number)) {
          defaults.parameter(e.getKey(), e.getValue());
        }
      }
      defaults.applyTo(client);
      err.println("ferry migrate: --reset: every capability off, every parameter at its default on the source");
    }
    List<String> changed = new ArrayList<>();
    MigrationSettings s = new MigrationSettings();
    if (xbzrle) {
      capabilityOn(s, changed, MigrationCapability.XBZRLE);
    }
    if (mappedRam) {
      capabilityOn(s, changed, MigrationCapability.MAPPED_RAM);
    }
    if (returnPath) {
      capabilityOn(s, changed, MigrationCapability.RETURN_PATH);
    }
    if (autoConverge) {
      capabilityOn(s, changed, MigrationCapability.AUTO_CONVERGE);
    }
    if (postcopy) {
      capabilityOn(s, changed, MigrationCapability.POSTCOPY_RAM);
      // Ferry: also switch on its own once precopy stops converging (before --postcopy-after)
      capabilityOn(s, changed, MigrationCapability.FERRY_AUTO_POSTCOPY);
    }
    if (bandwidthBytesPerSec != null) {
      s.parameter(MigrationParameter.MAX_BANDWIDTH, bandwidthBytesPerSec);
      changed.add("max-bandwidth=" + (bandwidthBytesPerSec == 0 ? "0 (unlimited)" : Units.rate(bandwidthBytesPerSec)));
    }
    if (downtimeLimitMs != null) {
      s.parameter(MigrationParameter.DOWNTIME_LIMIT, downtimeLimitMs);
      changed.add("downtime-limit=" + downtimeLimitMs + " ms");
    }
    if (xbzrleCacheSizeBytes != null) {
      s.parameter(MigrationParameter.XBZRLE_CACHE_SIZE, xbzrleCacheSizeBytes);
      changed.add("xbzrle-cache-size=" + Units.bytes(xbzrleCacheSizeBytes));
    }
    if (tlsCredsDir != null) {
      try {
        client.execute("object-del", JsonNodeFactory.instance.objectNode().put("id", TLS_OBJECT_ID));
      } catch (QmpError e) {
        // not there yet: the usual case
      }
      client.execute(
          "object-add",
          JsonNodeFactory.instance.objectNode()
              .put("qom-type", "tls-creds-x509")
              .put("id", TLS_OBJECT_ID)
              .put("dir", tlsCredsDir.toAbsolutePath().toString())
              .put("endpoint", "client")
              .put("verify-peer", true));
      s.parameter(MigrationParameter.TLS_CREDS, TLS_OBJECT_ID);
    }
    if (tlsHostname != null) {
      s.parameter(MigrationParameter.TLS_HOSTNAME, tlsHostname);
    }
    s.applyTo(client);
    if (!changed.isEmpty()) {
      err.println("ferry migrate: set on the source, and kept for later migrations as in QEMU (--reset restores the defaults): "
          + String.join(", ", changed));
    }
  }

  /** Turns {@code capability} on in {@code s} and notes it in {@code changed}. */
  private static void capabilityOn(MigrationSettings s, List<String> changed, MigrationCapability capability) {
    s.capability(capability, true);
    changed.add(capability.qapiName() + "=on");
  }

  /**
   * migrate resume=true, then polls as {@link #poll} does; says on stderr how long the recovery took
   * (from the command to postcopy-active, polled every few ms).
   */
  private MigrationInfo resume(QmpClient client, PrintStream err, MigrationTimeline timeline)
      throws IOException, QmpError, InterruptedException {
    MigrationInfo before = MigrationInfo.fromJson(client.execute("query-migrate"));
    long t0 = System.nanoTime();
    client.execute("migrate", JsonNodeFactory.instance.objectNode().put("uri", destination).put("resume", true));
    // the source connects on its migration thread: postcopy-paused until then
    while (true) {
      MigrationInfo info = MigrationInfo.fromJson(client.execute("query-migrate"));
      MigrationStatus st = info.status();
      if (st == MigrationStatus.POSTCOPY_ACTIVE || st == MigrationStatus.COMPLETED) {
        err.printf(Locale.ROOT, "ferry migrate: postcopy resumed over %s in %.0f ms (migrate resume=true to %s)%n",
            destination, (System.nanoTime() - t0) / 1e6, st.qapiName());
        break;
      }
      boolean newError = st == MigrationStatus.POSTCOPY_PAUSED && info.errorDesc() != null
          && !info.errorDesc().equals(before.errorDesc());
      if (newError || st == MigrationStatus.FAILED || st == null || st == MigrationStatus.NONE) {
        return info;
      }
      Thread.sleep(2);
    }
    return poll(client, err, timeline, null);
  }

  /**
   * Polls until the migration left setup/active/device/... or paused in postcopy; returns the last
   * answer.
   */
  private MigrationInfo poll(
      QmpClient client, PrintStream err, MigrationTimeline timeline, PostcopySwitch postcopySwitch)
      throws IOException, QmpError, InterruptedException {
    ProgressBar bar = quiet ? null : new ProgressBar(err, ProgressBar.stderrIsTerminal(), 1000);
    try {
      while (true) {
        MigrationInfo info = MigrationInfo.fromJson(client.execute("query-migrate"));
        timeline.add(info);
        if (bar != null) {
          bar.update(info);
        }
        MigrationStatus st = info.status();
        boolean done = st == null || st.isFinal() || st == MigrationStatus.NONE || st == MigrationStatus.POSTCOPY_PAUSED;
        if (done) {
          return info;
        }
        if (postcopySwitch != null && postcopySwitch.due(info)) {
          try {
            client.execute("migrate-start-postcopy");
          } catch (QmpError e) {
            // e.g. it completed meanwhile: the migration ends as precopy, and the report says so
            err.println("\nferry migrate: migrate-start-postcopy refused: " + e.desc());
          }
        }
        Thread.sleep(POLL_MS);
      }
    } finally {
      if (bar != null) {
        bar.finish();
      }
    }
  }

  /** Ctrl-C: cancel the migration on the source and wait (bounded) for the poll loop to end. */
  private void cancelOnSignal(QmpClient client) {
    try {
      client.execute("migrate_cancel");
      System.err.println("\nferry migrate: cancelling (migrate_cancel sent)");
      ended.await(10, TimeUnit.SECONDS);
    } catch (IOException | QmpError e) {
      System.err.println("\nferry migrate: migrate_cancel failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
