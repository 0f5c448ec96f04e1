package dev.ferry.qmp.hmp;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Locale;

/**
 * Sizes the way QEMU's HMP reads and writes them: {@code qemu_strtosz} (a number, maybe with a
 * fraction, then an optional binary suffix B/K/M/G/T/P/E, case-insensitive) and {@code size_to_str}
 * (three significant digits and an IEC unit: {@code 892 MiB}, {@code 1.37 GiB}).
 */
public final class HmpSizes {
  private static final String SUFFIXES = "BKMGTPE";
  private static final String[] IEC = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

  private HmpSizes() {}

  /**
   * Parses {@code text} as a size; a bare number is in units of {@code defaultSuffix} ('B' for
   * bytes, 'M' for MiB as HMP's migrate_set_speed and max-bandwidth use). Throws
   * NumberFormatException when it is not a size or does not fit a signed 64-bit value.
   */
  public static long parse(String text, char defaultSuffix) {
    String s = text.trim();
    int i = 0;
    while (i < s.length() && (Character.isDigit(s.charAt(i)) || s.charAt(i) == '.')) {
      i++;
    }
    if (i == 0) {
      throw new NumberFormatException("not a size: " + text);
    }
    BigDecimal number = new BigDecimal(s.substring(0, i));
    String rest = s.substring(i);
    char suffix;
    if (rest.isEmpty()) {
      suffix = defaultSuffix;
    } else if (rest.length() == 1) {
      suffix = Character.toUpperCase(rest.charAt(0));
    } else {
      throw new NumberFormatException("not a size: " + text);
    }
    int power = SUFFIXES.indexOf(suffix);
    if (power < 0) {
      throw new NumberFormatException("unknown size suffix in " + text);
    }
    if (power == 0 && number.scale() > 0 && number.stripTrailingZeros().scale() > 0) {
      throw new NumberFormatException("fractional bytes in " + text);
    }
    BigDecimal bytes = number.multiply(BigDecimal.valueOf(2).pow(10 * power));
    BigDecimal whole = bytes.setScale(0, java.math.RoundingMode.DOWN);
    if (whole.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
      throw new NumberFormatException("size too large: " + text);
    }
    return whole.longValueExact();
  }

  /** {@code size_to_str}: e.g. 1536 -> {@code 1.5 KiB}, 0 -> {@code 0 B}. */
  public static String toHuman(long bytes) {
    double v = bytes;
    int exp = bytes == 0 ? 0 : Math.getExponent(v / (1000.0 / 1024.0)) + 1; // frexp's exponent
    int i = Math.min(Math.max((exp - 1) / 10, 0), IEC.length - 1);
    double scaled = v / Math.pow(2, 10 * i);
    return threeSignificant(scaled) + " " + IEC[i] + "B";
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
