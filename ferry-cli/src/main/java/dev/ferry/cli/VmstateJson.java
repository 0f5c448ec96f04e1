package dev.ferry.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.vmstate.VMStateDump;
import dev.ferry.vmstate.VMStateDump.Description;
import dev.ferry.vmstate.VMStateDump.Field;
import dev.ferry.vmstate.VMStateDump.Section;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads a {@code -dump-vmstate} JSON text (QEMU's or {@code ferry vmstate dump}'s) back into a
 * {@link VMStateDump}, so two builds' dumps can be compared. Strict: a missing or mistyped key is
 * an {@link IllegalArgumentException} naming its path; keys it does not know are ignored.
 */
final class VmstateJson {
  /** Deeper nesting than any real description; bounds the recursion on hostile input. */
  static final int MAX_DEPTH = 64;

  private static final String MACHINE_KEY = "vmschkmachine";
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private VmstateJson() {}

  /** Parses {@code text}; throws IllegalArgumentException saying what is wrong and where. */
  static VMStateDump parse(String text) {
    JsonNode root;
    try {
      root = MAPPER.readTree(text);
    } catch (JsonProcessingException e) {
      // Jackson's text may name a source location it redacts: keep the reason, one line
      String why = String.valueOf(e.getOriginalMessage())
          .replaceAll("\\s*\\(start marker at \\[Source:[^\\]]*\\][^)]*\\)", "")
          .replaceAll("\\s+", " ");
      throw new IllegalArgumentException("not JSON: " + why
          + (e.getLocation() != null
              ? " at line " + e.getLocation().getLineNr() + " column " + e.getLocation().getColumnNr()
              : ""), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("not a vmstate dump: the top level is not a JSON object");
    }
    JsonNode m = root.get(MACHINE_KEY);
    if (m == null || !m.isObject()) {
      throw new IllegalArgumentException("not a vmstate dump: no '" + MACHINE_KEY + "' object");
    }
    String machine = text(m, "Name", MACHINE_KEY);
    List<Section> sections = new ArrayList<>();
    for (Map.Entry<String, JsonNode> e : root.properties()) {
      if (e.getKey().equals(MACHINE_KEY)) {
        continue;
      }
      String path = e.getKey();
      JsonNode s = object(e.getValue(), path);
      JsonNode d = s.get("Description");
      sections.add(new Section(
          text(s, "Name", path),
          integer(s, "version_id", path),
          integer(s, "minimum_version_id", path),
          description(object(d, path + "/Description"), path + "/Description", 1)));
    }
    return new VMStateDump(machine, sections);
  }

  private static Description description(JsonNode d, String path, int depth) {
    if (depth > MAX_DEPTH) {
      throw new IllegalArgumentException(path + ": nested deeper than " + MAX_DEPTH + " levels");
    }
    List<Field> fields = new ArrayList<>();
    JsonNode fs = d.get("Fields");
    if (fs != null) {
      array(fs, path + "/Fields");
      for (int i = 0; i < fs.size(); i++) {
        String fp = path + "/Fields[" + i + "]";
        JsonNode f = object(fs.get(i), fp);
        JsonNode nested = f.get("Description");
        JsonNode exists = f.get("field_exists");
        if (exists == null || !exists.isBoolean()) {
          throw new IllegalArgumentException(fp + ": 'field_exists' is missing or not a boolean");
        }
        fields.add(new Field(
            text(f, "field", fp),
            integer(f, "version_id", fp),
            exists.booleanValue(),
            integer(f, "size", fp),
            nested == null ? null : description(object(nested, fp + "/Description"), fp + "/Description", depth + 1)));
      }
    }
    List<Description> subs = new ArrayList<>();
    JsonNode ss = d.get("Subsections");
    if (ss != null) {
      array(ss, path + "/Subsections");
      for (int i = 0; i < ss.size(); i++) {
        String sp = path + "/Subsections[" + i + "]";
        subs.add(description(object(ss.get(i), sp), sp, depth + 1));
      }
    }
    return new Description(
        text(d, "name", path), integer(d, "version_id", path), integer(d, "minimum_version_id", path), fields, subs);
  }

  private static JsonNode object(JsonNode n, String path) {
    if (n == null || !n.isObject()) {
      throw new IllegalArgumentException(path + ": expected a JSON object");
    }
    return n;
  }

  private static void array(JsonNode n, String path) {
    if (!n.isArray()) {
      throw new IllegalArgumentException(path + ": expected a JSON array");
    }
  }

  private static String text(JsonNode o, String key, String path) {
    JsonNode v = o.get(key);
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException(path + ": '" + key + "' is missing or not a string");
    }
    return v.textValue();
  }

  private static int integer(JsonNode o, String key, String path) {
    JsonNode v = o.get(key);
    if (v == null || !v.canConvertToInt() || !v.isIntegralNumber()) {
      throw new IllegalArgumentException(path + ": '" + key + "' is missing or not a 32-bit integer");
    }
    return v.intValue();
  }
}
