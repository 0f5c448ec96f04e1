package dev.ferry.cli.live;

import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import java.io.PrintStream;
import java.util.Locale;

/**
 * The progress line of {@code ferry migrate} and {@code ferry demo}, fed with successive {@code
 * query-migrate} answers: a bar of the RAM sent so far ({@code total - remaining}), the stream bytes
 * transferred, the transfer rate between the last two answers, the bytes remaining, the guest's
 * dirty rate and the pass (dirty syncs). On a terminal it redraws one line; otherwise it prints a
 * line at most every {@code plainEveryMs} and at once when the phase (the status: setup, active,
 * postcopy-active, device, completed, ...) changes, and {@link #finish} prints the last state if it was not
 * printed yet, so a log always ends with the final line.
 *
 * <p>The percentage never runs backwards within a migration: remaining RAM grows again when a
 * dirty-log sync finds pages the guest wrote meanwhile, but the bar shows the most that was done.
 */
public final class ProgressBar {
  private static final int WIDTH = 24;

  private final PrintStream out;
  private final boolean terminal;
  private final long plainEveryMs;
  private long lastNs;
  private long lastTransferred;
  private double rateBytesPerSec;
  private long lastPrintNs;
  private int lastLength;
  private boolean drew;
  private double doneMax;
  private String lastLine;
  private boolean lastPrinted = true;
  private String lastStatus;

  public ProgressBar(PrintStream out, boolean terminal, long plainEveryMs) {
    this.out = out;
    this.terminal = terminal;
    this.plainEveryMs = plainEveryMs;
  }

  /** Is this JVM's standard error most likely a terminal? */
  public static boolean stderrIsTerminal() {
    java.io.Console c = System.console();
    return c != null && c.isTerminal() && System.getenv("TERM") != null && !"dumb".equals(System.getenv("TERM"));
  }

  public void update(MigrationInfo info) {
    MigrationStats ram = info.ram();
    if (ram == null || info.status() == null) {
      return;
    }
    long now = System.nanoTime();
    if (lastNs != 0 && now > lastNs) {
      double inst = (ram.transferredBytes() - lastTransferred) * 1e9 / (now - lastNs);
      rateBytesPerSec = rateBytesPerSec == 0 ? inst : 0.5 * rateBytesPerSec + 0.5 * inst;
    }
    lastNs = now;
    lastTransferred = ram.transferredBytes();
    doneMax = Math.max(doneMax, fraction(info.status().qapiName(), ram));
    String line = render(info.status().qapiName(), ram, rateBytesPerSec, doneMax) + convergence(info);
    lastLine = line;
    lastPrinted = false;
    boolean newPhase = !info.status().qapiName().equals(lastStatus);
    lastStatus = info.status().qapiName();
    if (terminal) {
      String pad = line.length() < lastLength ? " ".repeat(lastLength - line.length()) : "";
      out.print("\r" + line + pad);
      out.flush();
      lastLength = line.length();
      drew = true;
    } else if (newPhase || lastPrintNs == 0 || now - lastPrintNs >= plainEveryMs * 1_000_000L) {
      out.println(line);
      out.flush();
      lastPrintNs = now;
      lastPrinted = true;
    }
  }

  /** Ends the redrawn line (call once after the last update). */
  public void finish() {
    if (terminal && drew) {
      out.println();
      drew = false;
    } else if (!terminal && !lastPrinted && lastLine != null) {
      out.println(lastLine);
      out.flush();
      lastPrinted = true;
    }
  }

  /** The part of RAM sent: {@code (total - remaining) / total}, 1 once completed. */
  static double fraction(String status, MigrationStats ram) {
    long total = ram.totalBytes();
    double done = total <= 0 ? 0 : Math.max(0, Math.min(1, (double) (total - ram.remainingBytes()) / total));
    return status.equals("completed") ? 1 : done;
  }

  /**
   * The auto-converge throttle and Ferry's "not converging" verdict with its figures (the guest's
   * dirty rate against the transfer rate), when query-migrate has them; empty otherwise.
   */
  static String convergence(MigrationInfo info) {
    StringBuilder sb = new StringBuilder();
    if (info.cpuThrottlePercentage() != null) {
      sb.append("  throttle ").append(info.cpuThrottlePercentage()).append('%');
    }
    if (info.convergence() != null && !info.convergence().converging()) {
      sb.append("  NOT CONVERGING (dirty ").append(Units.rate(info.convergence().dirtyBytesPerSec()))
          .append(" vs sent ").append(Units.rate(info.convergence().transferBytesPerSec())).append(')');
    }
    return sb.toString();
  }

  static String render(String status, MigrationStats ram, double rateBytesPerSec, double done) {
    int filled = (int) Math.round(done * WIDTH);
    String bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
    long dirtyBytesPerSec = ram.dirtyPagesRate() * Math.max(1, ram.pageSizeBytes());
    return String.format(Locale.ROOT, "[%s] %3.0f%%  %-10s sent %10s  %12s  left %10s  dirty %12s  pass %d",
        bar, done * 100, status, Units.bytes(ram.transferredBytes()), Units.rate(rateBytesPerSec),
        Units.bytes(ram.remainingBytes()), Units.rate(dirtyBytesPerSec), ram.dirtySyncCount());
  }
}
