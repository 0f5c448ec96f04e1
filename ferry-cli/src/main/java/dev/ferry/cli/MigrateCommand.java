package dev.ferry.cli;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import dev.ferry.transport.TlsCredentials;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry migrate --qmp URI [options] DEST_URI}: drives a running source through its QMP
 * monitor exactly as an external QMP tool would — {@code migrate-set-capabilities} and {@code
 * migrate-set-parameters} for the options given, {@code migrate}, then {@code query-migrate} about
 * ten times a second — with a progress line on stderr and a report on stdout at the end. Ctrl-C
 * sends {@code migrate_cancel}.
 *
 * <p>Exit codes: 0 only when the migration completed; 1 when it failed or was cancelled, or the
 * monitor could not be reached or refused a command (the error on stderr); 2 for a bad option.
 */
@Command(
    name = "migrate",
    mixinStandardHelpOptions = true,
    description = "Migrate a running machine through its QMP monitor, with progress and a report.")
public final class MigrateCommand implements Callable<Integer> {
  private static final long POLL_MS = 100;

  @Option(names = "--qmp", required = true, paramLabel = "URI", description = "the source's QMP monitor: unix:PATH or tcp:HOST:PORT")
  String qmp;

  @Parameters(index = "0", paramLabel = "DEST_URI", description = "where to migrate: tcp:HOST:PORT, unix:PATH, exec:CMD, fd:N, file:PATH")
  String destination;

  @Option(names = "--bandwidth", paramLabel = "RATE", converter = CliSizes.Rate.class, description = "max-bandwidth in bytes/s, with K/M/G suffixes (0: unlimited)")
  Long bandwidthBytesPerSec;

  @Option(names = "--downtime-limit", paramLabel = "MS", description = "downtime-limit in milliseconds")
  Long downtimeLimitMs;

  @Option(names = "--xbzrle", description = "turn the xbzrle capability on")
  boolean xbzrle;

  @Option(names = "--xbzrle-cache-size", paramLabel = "SIZE", converter = CliSizes.ByteSize.class, description = "xbzrle-cache-size in bytes, with K/M/G suffixes")
  Long xbzrleCacheSizeBytes;

  @Option(names = "--return-path", description = "turn the return-path capability on")
  boolean returnPath;

  @Option(names = "--quiet", description = "no progress line")
  boolean quiet;

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
      err.println("ferry migrate: --downtime-limit must not be negative (see 'ferry migrate --help')");
      return 2;
    }
    QmpClient client;
    try {
      TlsCredentials monitorCreds =
          qmpTlsCredsDir == null ? null : TlsCredentials.load("ferry-monitor", qmpTlsCredsDir, TlsCredentials.Endpoint.CLIENT, true);
      client = QmpClient.connect(qmp, monitorCreds);
    } catch (IOException | RuntimeException e) {
      err.println("ferry migrate: cannot reach the QMP monitor " + qmp + ": " + RunCommand.message(e));
      return 1;
    }
    Thread hook = Thread.ofPlatform().unstarted(() -> cancelOnSignal(client));
    Runtime.getRuntime().addShutdownHook(hook);
    try (client) {
      setUp(client);
      client.execute("migrate", JsonNodeFactory.instance.objectNode().put("uri", destination));
      MigrationInfo info = poll(client, err);
      report(info, out);
      if (info.status() == MigrationStatus.COMPLETED) {
        return 0;
      }
      if (info.status() == MigrationStatus.FAILED) {
        err.println("ferry migrate: migration failed: " + (info.errorDesc() != null ? info.errorDesc() : "no error description"));
      } else {
        err.println("ferry migrate: migration " + (info.status() == null ? "ended" : info.status().qapiName()));
      }
      return 1;
    } catch (QmpError e) {
      err.println("ferry migrate: " + e.desc());
      return 1;
    } catch (IOException e) {
      err.println("ferry migrate: lost the QMP monitor " + qmp + ": " + RunCommand.message(e));
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

  private void setUp(QmpClient client) throws IOException, QmpError {
    if (xbzrle || returnPath) {
      ObjectNode args = JsonNodeFactory.instance.objectNode();
      var caps = args.putArray("capabilities");
      if (xbzrle) {
        caps.addObject().put("capability", "xbzrle").put("state", true);
      }
      if (returnPath) {
        caps.addObject().put("capability", "return-path").put("state", true);
      }
      client.execute("migrate-set-capabilities", args);
    }
    ObjectNode params = JsonNodeFactory.instance.objectNode();
    if (bandwidthBytesPerSec != null) {
      params.put("max-bandwidth", bandwidthBytesPerSec);
    }
    if (downtimeLimitMs != null) {
      params.put("downtime-limit", downtimeLimitMs);
    }
    if (xbzrleCacheSizeBytes != null) {
      params.put("xbzrle-cache-size", xbzrleCacheSizeBytes);
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
      params.put("tls-creds", TLS_OBJECT_ID);
    }
    if (tlsHostname != null) {
      params.put("tls-hostname", tlsHostname);
    }
    if (!params.isEmpty()) {
      client.execute("migrate-set-parameters", params);
    }
  }

  /** Polls until the migration left setup/active/device/...; returns the last answer. */
  private MigrationInfo poll(QmpClient client, PrintStream err) throws IOException, QmpError, InterruptedException {
    boolean tty = System.console() != null && System.console().isTerminal();
    long lastLine = 0;
    boolean drawn = false;
    while (true) {
      MigrationInfo info = MigrationInfo.fromJson(client.execute("query-migrate"));
      boolean done = info.status() == null || info.status() == MigrationStatus.COMPLETED
          || info.status() == MigrationStatus.FAILED || info.status() == MigrationStatus.CANCELLED
          || info.status() == MigrationStatus.NONE;
      if (!quiet) {
        long now = System.nanoTime();
        if (tty) {
          err.print("\r" + progressLine(info) + "\u001b[K");
          drawn = true;
        } else if (done || now - lastLine >= 1_000_000_000L) {
          err.println(progressLine(info)); // one line a second when not on a terminal
          lastLine = now;
        }
      }
      if (done) {
        if (drawn) {
          err.println();
        }
        return info;
      }
      Thread.sleep(POLL_MS);
    }
  }

  /** {@code [#########-----------]  45% 120.3 MiB sent, 2.6 Gbit/s, 30.1 MiB left, dirty 1200 pages/s, pass 3 (active)}. */
  static String progressLine(MigrationInfo info) {
    MigrationStats r = info.ram();
    String status = info.status() == null ? "none" : info.status().qapiName();
    if (r == null) {
      return "migration: " + status;
    }
    double frac = r.totalBytes() == 0 ? 0 : Math.min(1.0, Math.max(0.0, 1.0 - (double) r.remainingBytes() / r.totalBytes()));
    if (info.status() == MigrationStatus.COMPLETED) {
      frac = 1.0;
    }
    int width = 20;
    int filled = (int) Math.round(frac * width);
    return String.format(
        Locale.ROOT,
        "[%s%s] %3d%% %s sent, %.1f Mbit/s, %s left, dirty %d pages/s, pass %d (%s)",
        "#".repeat(filled),
        "-".repeat(width - filled),
        Math.round(frac * 100),
        CliSizes.human(r.transferredBytes()),
        r.mbps(),
        CliSizes.human(r.remainingBytes()),
        r.dirtyPagesRate(),
        r.dirtySyncCount(),
        status);
  }

  /** The closing report on stdout. */
  static void report(MigrationInfo info, PrintStream out) {
    String status = info.status() == null ? "none" : info.status().qapiName();
    out.println("migration " + status + (info.errorDesc() != null ? ": " + info.errorDesc() : ""));
    out.println("  total time:   " + orDash(info.totalTimeMs(), " ms"));
    out.println("  downtime:     " + orDash(info.downtimeMs(), " ms"));
    out.println("  setup time:   " + orDash(info.setupTimeMs(), " ms"));
    MigrationStats r = info.ram();
    if (r != null) {
      out.println("  transferred:  " + CliSizes.human(r.transferredBytes()) + " (" + r.transferredBytes() + " bytes)");
      out.println("  RAM total:    " + CliSizes.human(r.totalBytes()));
      out.println("  zero pages:   " + r.duplicatePages());
      out.println("  normal pages: " + r.normalPages() + " (" + CliSizes.human(r.normalBytes()) + ")");
      out.println("  precopy:      " + CliSizes.human(r.precopyBytes()) + ", during downtime: " + CliSizes.human(r.downtimeBytes()));
      Long total = info.totalTimeMs();
      double avg = total == null || total == 0 ? 0 : r.transferredBytes() * 8.0 / 1e6 / (total / 1000.0);
      out.println(String.format(Locale.ROOT, "  throughput:   %.1f Mbit/s average (%.1f Mbit/s last)", avg, r.mbps()));
      out.println("  dirty syncs:  " + r.dirtySyncCount());
    }
    if (info.xbzrleCache() != null) {
      var x = info.xbzrleCache();
      out.println("  xbzrle:       " + x.pages() + " pages, " + CliSizes.human(x.bytes()) + ", " + x.cacheMiss() + " misses, " + x.overflow() + " overflows");
    }
  }

  private static String orDash(Long v, String unit) {
    return v == null ? "-" : v + unit;
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
