package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The answer of {@code query-dirty-rate} (QAPI {@code DirtyRateInfo}): {@code status} is {@code
 * unstarted}, {@code measuring} or {@code measured}; {@code dirty-rate} (MB/s, i.e. MiB/s) is
 * present once measured; {@code start-time} is in seconds, {@code calc-time} in seconds, {@code
 * sample-pages} per GiB; {@code mode} is {@code page-sampling}.
 */
public record DirtyRateInfo(String status, long startTimeS, long calcTimeS, long samplePages, String mode, Long dirtyRateMiBPerSec) {
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    if (dirtyRateMiBPerSec != null) {
      o.put("dirty-rate", dirtyRateMiBPerSec);
    }
    o.put("status", status);
    o.put("start-time", startTimeS);
    o.put("calc-time", calcTimeS);
    o.put("sample-pages", samplePages);
    o.put("mode", mode);
    return o;
  }

  public static DirtyRateInfo fromJson(JsonNode n) {
    return new DirtyRateInfo(
        n.path("status").asText(),
        n.path("start-time").asLong(),
        n.path("calc-time").asLong(),
        n.path("sample-pages").asLong(),
        n.path("mode").asText("page-sampling"),
        n.has("dirty-rate") ? n.get("dirty-rate").asLong() : null);
  }
}
