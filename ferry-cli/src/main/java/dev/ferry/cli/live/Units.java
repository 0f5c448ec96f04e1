package dev.ferry.cli.live;

import java.util.Locale;

/**
 * Human formatting of sizes, rates and durations for the demo, the system tests' logs and the
 * benchmark tables. Sizes and rates use binary units (KiB, MiB, GiB) throughout, so that a 1 GiB
 * guest reads as {@code 1.00 GiB}; counts get thin grouping ({@code 262 144}).
 */
public final class Units {
  private static final String[] SIZE_UNITS = {"B", "KiB", "MiB", "GiB", "TiB"};

  private Units() {}

  /** {@code 1.00 GiB}, {@code 534.2 MiB}, {@code 812 B}: three significant digits. */
  public static String bytes(double bytes) {
    if (bytes < 0) {
      return "-" + bytes(-bytes);
    }
    int u = 0;
    double v = bytes;
    while (v >= 1024 && u < SIZE_UNITS.length - 1) {
      v /= 1024;
      u++;
    }
    if (u == 0) {
      return String.format(Locale.ROOT, "%.0f B", v);
    }
    String f = v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s";
    return String.format(Locale.ROOT, f, v, SIZE_UNITS[u]);
  }

  /** {@code 1.21 GiB/s}. */
  public static String rate(double bytesPerSec) {
    return bytes(bytesPerSec) + "/s";
  }

  /** {@code 1 234 ms} below a minute of milliseconds, else {@code 75.3 s}. */
  public static String millis(long ms) {
    return ms < 60_000 ? count(ms) + " ms" : String.format(Locale.ROOT, "%.1f s", ms / 1000.0);
  }

  /** {@code 262 144}. */
  public static String count(long n) {
    return String.format(Locale.ROOT, "%,d", n).replace(',', ' ');
  }

  /** {@code 87%}; {@code n/a} when the base is not positive. */
  public static String percent(double part, double whole) {
    return whole > 0 ? String.format(Locale.ROOT, "%.0f%%", 100.0 * part / whole) : "n/a";
  }

  /**
   * Parses {@code 1G}, {@code 512M}, {@code 64k}, {@code 4096}, {@code 1GiB} (binary multiples).
   *
   * @throws IllegalArgumentException with a one-line reason
   */
  public static long parseSize(String text) {
    String t = text.strip().toUpperCase(Locale.ROOT);
    if (t.endsWith("IB")) {
      t = t.substring(0, t.length() - 2);
    } else if (t.endsWith("B") && t.length() > 1 && !Character.isDigit(t.charAt(t.length() - 2))) {
      t = t.substring(0, t.length() - 1);
    }
    long mul = 1;
    if (!t.isEmpty()) {
      char c = t.charAt(t.length() - 1);
      int shift = switch (c) {
        case 'K' -> 10;
        case 'M' -> 20;
        case 'G' -> 30;
        case 'T' -> 40;
        default -> 0;
      };
      if (shift > 0) {
        mul = 1L << shift;
        t = t.substring(0, t.length() - 1);
      }
    }
    try {
      long v = Long.parseLong(t.strip());
      if (v < 0) {
        throw new IllegalArgumentException("negative size '" + text + "'");
      }
      return Math.multiplyExact(v, mul);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException("bad size '" + text + "' (expected e.g. 1G, 512M, 4096)");
    }
  }
}
