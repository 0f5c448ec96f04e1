package dev.ferry.cli;

import java.util.Locale;
import picocli.CommandLine;

/**
 * Sizes and rates on the command line: a non-negative integer with an optional binary suffix
 * {@code K}, {@code M}, {@code G}, {@code T} (also {@code KiB}…, {@code KB}…, case-insensitive;
 * all powers of 1024). A rate may end in {@code /s}. What a bare number means is the option's
 * choice (bytes, or MiB for {@code --memory} as QEMU's {@code -m}).
 */
final class CliSizes {
  private CliSizes() {}

  /**
   * Parses {@code text}; {@code defaultShift} is the unit of a bare number (0 bytes, 20 MiB).
   *
   * @throws IllegalArgumentException with a one-line reason
   */
  static long parse(String text, int defaultShift) {
    String t = text.strip();
    String lower = t.toLowerCase(Locale.ROOT);
    int end = 0;
    while (end < lower.length() && Character.isDigit(lower.charAt(end))) {
      end++;
    }
    if (end == 0) {
      throw new IllegalArgumentException("'" + text + "' is not a size (use e.g. 64M, 4G, 1048576)");
    }
    String suffix = lower.substring(end);
    int shift =
        switch (suffix) {
          case "" -> defaultShift;
          case "b" -> 0;
          case "k", "kb", "kib" -> 10;
          case "m", "mb", "mib" -> 20;
          case "g", "gb", "gib" -> 30;
          case "t", "tb", "tib" -> 40;
          default ->
              throw new IllegalArgumentException(
                  "'" + text + "' has an unknown size suffix '" + t.substring(end) + "' (use K, M, G or T)");
        };
    long n;
    try {
      n = Long.parseLong(lower.substring(0, end));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("'" + text + "' is too large");
    }
    if (shift > 0 && n > (Long.MAX_VALUE >> shift)) {
      throw new IllegalArgumentException("'" + text + "' is too large");
    }
    return n << shift;
  }

  /** A rate in bytes per second: a size, optionally followed by {@code /s}. */
  static long parseRate(String text) {
    String t = text.strip();
    if (t.toLowerCase(Locale.ROOT).endsWith("/s")) {
      t = t.substring(0, t.length() - 2);
    }
    try {
      return parse(t, 0);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("'" + text + "' is not a rate (use bytes/s, e.g. 64M or 512K/s)");
    }
  }

  /** {@code 64 MiB}, {@code 1 GiB}, {@code 1536 KiB}: the largest unit that divides evenly. */
  static String format(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    long v = bytes;
    while (u < units.length - 1 && v != 0 && v % 1024 == 0) {
      v /= 1024;
      u++;
    }
    return v + " " + units[u];
  }

  /** {@code 1.5 GiB}-style, for progress output. */
  static String human(double bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double v = bytes;
    while (u < units.length - 1 && Math.abs(v) >= 1024) {
      v /= 1024;
      u++;
    }
    return u == 0 ? String.format(Locale.ROOT, "%.0f %s", v, units[u]) : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  /** picocli converter for sizes whose bare number means MiB ({@code --memory}). */
  static final class MemorySize implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      try {
        long v = parse(value, 20);
        if (v <= 0 || v % 4096 != 0) {
          throw new CommandLine.TypeConversionException(
              "'" + value + "' must be a positive multiple of 4 KiB");
        }
        return v;
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }

  /** picocli converter for sizes in bytes. */
  static final class ByteSize implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      try {
        return parse(value, 0);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }

  /** picocli converter for rates in bytes/s. */
  static final class Rate implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      try {
        return parseRate(value);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
