package dev.ferry.stream;

/**
 * Ferry's one JSON string escaper, for every JSON text it writes by hand: the vmdesc after a
 * stream's EOF ({@link QemuJsonWriter}), QMP replies and events, and {@code ferry analyze}'s
 * Python-style dumps. Both styles escape {@code "}, {@code \} and the control characters with
 * {@code \b \f \n \r \t} where JSON has a short form and {@code \}{@code uXXXX} otherwise, and
 * write non-ASCII as {@code \}{@code uXXXX} (a character beyond the BMP as its UTF-16 surrogate
 * pair, as Java strings hold it); they differ only where their models do:
 *
 * <ul>
 *   <li>{@link Style#QEMU}: QEMU 7.2's JSON writer (qobject/json-writer.c), used for QMP and the
 *       vmdesc alike: upper-case hex, DEL (0x7F) escaped, {@code /} as is.
 *   <li>{@link Style#PYTHON}: Python's {@code json.dumps} with {@code ensure_ascii} (what QEMU's
 *       analyze-migration.py prints): lower-case hex, DEL as is.
 * </ul>
 */
public final class JsonStrings {
  /** Whose escaping to reproduce. */
  public enum Style {
    /** QEMU 7.2's JSON writer (QMP, vmdesc). */
    QEMU,
    /** Python's json module with ensure_ascii. */
    PYTHON
  }

  private static final char[] UPPER = "0123456789ABCDEF".toCharArray();
  private static final char[] LOWER = "0123456789abcdef".toCharArray();

  private JsonStrings() {}

  /** Appends {@code s} to {@code sb} as a quoted JSON string in {@code style}. */
  public static void quote(StringBuilder sb, String s, Style style) {
    sb.append('"');
    char[] hex = style == Style.QEMU ? UPPER : LOWER;
    int firstEscaped = style == Style.QEMU ? 0x7F : 0x80;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\b' -> sb.append("\\b");
        case '\f' -> sb.append("\\f");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20 || c >= firstEscaped) {
            sb.append("\\u").append(hex[c >> 12]).append(hex[(c >> 8) & 0xF]).append(hex[(c >> 4) & 0xF]).append(hex[c & 0xF]);
          } else {
            sb.append(c);
          }
        }
      }
    }
    sb.append('"');
  }

  /** {@code s} as a quoted JSON string in {@code style}. */
  public static String quote(String s, Style style) {
    StringBuilder sb = new StringBuilder(s.length() + 2);
    quote(sb, s, style);
    return sb.toString();
  }
}
