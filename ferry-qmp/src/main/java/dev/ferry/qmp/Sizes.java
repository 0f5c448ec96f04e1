package dev.ferry.qmp;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Sizes and rates, the one grammar of Ferry's command line ({@code ferry run}, {@code migrate},
 * {@code demo}, via picocli converters) and of its human monitor ({@code migrate_set_speed}, {@code
 * migrate_set_parameter}):
 *
 * <pre>
 * size  = number [suffix]            number = digits ["." digits]   (QEMU's qemu_strtosz)
 * suffix = B | K | M | G | T | P | E, optionally followed by "iB" or "B" (K, KiB, KB: all 1024)
 * rate  = size ["/s"]                (bytes per second)
 * </pre>
 *
 * Case does not matter; every multiple is a power of 1024; a fraction is allowed with a suffix
 * ({@code 1.5G}) but not for bytes. What a bare number means is the caller's choice: bytes, or MiB
 * for {@code --memory} (QEMU's {@code -m}) and HMP's {@code migrate_set_speed}/{@code max-bandwidth}
 * (as QEMU's HMP). Output: {@link #human} is QEMU's {@code size_to_str} (three significant digits,
 * IEC units), {@link #exact} the largest unit that divides evenly.
 */
public final class Sizes {
  private static final String SUFFIXES = "BKMGTPE";
  private static final String[] IEC = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  private static final Pattern SIZE =
      Pattern.compile("(\\d+(?:\\.\\d*)?|\\.\\d+)\\s*(?:([BKMGTPE])(?:I?B)?)?", Pattern.CASE_INSENSITIVE);

  /** The one error text for a size that does not parse. */
  static String notASize(String text) {
    return "'" + text + "' is not a size: use a number with an optional suffix B, K, M, G, T, P or E"
        + " (powers of 1024), e.g. 64M, 1.5G, 4096";
  }

  private Sizes() {}

  /**
   * Parses {@code text}; a bare number is in units of {@code defaultSuffix} ('B' for bytes, 'M' for
   * MiB).
   *
   * @throws NumberFormatException (an IllegalArgumentException) with a one-line reason naming the text
   */
  public static long parse(String text, char defaultSuffix) {
    Matcher m = SIZE.matcher(text.strip());
    if (!m.matches()) {
      throw new NumberFormatException(notASize(text));
    }
    BigDecimal number = new BigDecimal(m.group(1).endsWith(".") ? m.group(1) + "0" : m.group(1));
    char suffix = m.group(2) == null ? defaultSuffix : Character.toUpperCase(m.group(2).charAt(0));
    int power = SUFFIXES.indexOf(suffix);
    if (power < 0) {
      throw new IllegalArgumentException("default suffix " + defaultSuffix);
    }
    if (power == 0 && number.stripTrailingZeros().scale() > 0) {
      throw new NumberFormatException("'" + text + "' is not a size: a number of bytes has no fraction");
    }
    BigDecimal bytes = number.multiply(BigDecimal.valueOf(2).pow(10 * power)).setScale(0, RoundingMode.DOWN);
    if (bytes.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
      throw new NumberFormatException("'" + text + "' is too large (at most 8E - 1 bytes)");
    }
    return bytes.longValueExact();
  }

  /** A rate in bytes per second: a size (bare number: bytes), optionally followed by {@code /s}. */
  public static long parseRate(String text) {
    String t = text.strip();
    if (t.toLowerCase(Locale.ROOT).endsWith("/s")) {
      t = t.substring(0, t.length() - 2);
    }
    try {
      return parse(t, 'B');
    } catch (NumberFormatException e) {
      throw new NumberFormatException(e.getMessage().replace("'" + t + "'", "'" + text + "'").replace("not a size", "not a rate")
          + (e.getMessage().contains("not a size") ? ", optionally followed by /s" : ""));
    }
  }

  /** QEMU's {@code size_to_str}: e.g. 1536 -> {@code 1.5 KiB}, 0 -> {@code 0 B}, {@code 892 MiB}. */
  public static String human(double bytes) {
    if (bytes < 0) {
      return "-" + human(-bytes);
    }
    int exp = bytes == 0 ? 0 : Math.getExponent(bytes / (1000.0 / 1024.0)) + 1; // frexp's exponent
    int i = Math.min(Math.max((exp - 1) / 10, 0), IEC.length - 1);
    double scaled = bytes / Math.pow(2, 10 * i);
    return threeSignificant(scaled) + " " + IEC[i] + "B";
  }

  /** {@code 64 MiB}, {@code 1 GiB}, {@code 1536 KiB}: the largest unit that divides evenly. */
  public static String exact(long bytes) {
    int u = 0;
    long v = bytes;
    while (u < IEC.length - 1 && v != 0 && v % 1024 == 0) {
      v /= 1024;
      u++;
    }
    return v + " " + IEC[u] + "B";
  }

  /** C's {@code %0.3g} for the values size_to_str produces (below 1000). */
  static String threeSignificant(double d) {
    if (d == 0) {
      return "0";
    }
    BigDecimal b = new BigDecimal(d).round(new MathContext(3)).stripTrailingZeros();
    if (b.precision() - b.scale() > 3) {
      return String.format(Locale.ROOT, "%.2e", d).replace("e+0", "e+");
    }
    return b.toPlainString();
  }
}
