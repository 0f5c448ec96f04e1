package dev.ferry.cli.analyze;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.stream.JsonStrings;
import java.util.Iterator;
import java.util.Map;

/**
 * Writes JSON the way QEMU's analyzer prints it (Python's {@code json} with {@code indent=4},
 * separators {@code ","} and {@code ": "}, ASCII only), so that {@code ferry analyze --dump} output
 * can be diffed against the analyzer's line by line, not only compared as parsed JSON.
 */
final class PythonJson {
  private PythonJson() {}

  static String write(JsonNode node) {
    StringBuilder sb = new StringBuilder();
    write(node, 0, sb);
    return sb.toString();
  }

  private static void write(JsonNode node, int depth, StringBuilder sb) {
    if (node.isObject()) {
      if (node.isEmpty()) {
        sb.append("{}");
        return;
      }
      sb.append('{');
      Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        newline(depth + 1, sb);
        JsonStrings.quote(sb, e.getKey(), JsonStrings.Style.PYTHON);
        sb.append(": ");
        write(e.getValue(), depth + 1, sb);
        if (it.hasNext()) {
          sb.append(',');
        }
      }
      newline(depth, sb);
      sb.append('}');
    } else if (node.isArray()) {
      if (node.isEmpty()) {
        sb.append("[]");
        return;
      }
      sb.append('[');
      for (int i = 0; i < node.size(); i++) {
        newline(depth + 1, sb);
        write(node.get(i), depth + 1, sb);
        if (i + 1 < node.size()) {
          sb.append(',');
        }
      }
      newline(depth, sb);
      sb.append(']');
    } else if (node.isTextual()) {
      JsonStrings.quote(sb, node.textValue(), JsonStrings.Style.PYTHON);
    } else {
      sb.append(node.toString()); // numbers, booleans, null
    }
  }

  private static void newline(int depth, StringBuilder sb) {
    sb.append('\n');
    for (int i = 0; i < depth; i++) {
      sb.append("    ");
    }
  }

}
