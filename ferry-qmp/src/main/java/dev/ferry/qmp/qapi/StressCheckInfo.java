package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The answer of Ferry's {@code ferry-stress-check}: whether guest RAM holds the {@code stress}
 * program's pattern (QEMU migration-test's rule), how many pages were read, how many broke the
 * pattern, and the first few bad pages as text ({@code BLOCK@0xOFFSET: VALUE after PREVIOUS}). It
 * lets a test or an operator check a destination's memory after a migration through the monitor.
 */
public record StressCheckInfo(boolean passed, long pagesChecked, long badPages, List<String> firstBad) {
  public StressCheckInfo {
    firstBad = List.copyOf(Objects.requireNonNull(firstBad, "firstBad"));
  }

  /** {@code {"passed", "pages-checked", "bad-pages", "first-bad": [...]}}. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("passed", passed);
    o.put("pages-checked", pagesChecked);
    o.put("bad-pages", badPages);
    ArrayNode arr = o.putArray("first-bad");
    firstBad.forEach(arr::add);
    return o;
  }

  public static StressCheckInfo fromJson(JsonNode n) {
    List<String> bad = new ArrayList<>();
    n.path("first-bad").forEach(b -> bad.add(b.asText()));
    return new StressCheckInfo(
        n.path("passed").asBoolean(), n.path("pages-checked").asLong(), n.path("bad-pages").asLong(), bad);
  }
}
