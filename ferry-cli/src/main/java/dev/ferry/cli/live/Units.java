package dev.ferry.cli.live;

import dev.ferry.qmp.Sizes;
import java.util.Locale;

/**
 * Human formatting of sizes, rates and durations for the demo, {@code migrate}, the system tests'
 * logs and the benchmark tables. Sizes and rates are {@link Sizes#human} (QEMU's size_to_str: binary
 * units, three significant digits); counts get thin grouping ({@code 262 144}). Parsing is {@link
 * Sizes}' alone.
 */
public final class Units {
  private Units() {}

  /** {@code 1 GiB}, {@code 534 MiB}, {@code 812 B}: QEMU's size_to_str ({@link Sizes#human}). */
  public static String bytes(double bytes) {
    return Sizes.human(bytes);
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
}
