package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Objects;

/**
 * One saved snapshot (QAPI {@code SnapshotInfo}): id, tag, size of the saved machine state, when it
 * was taken (wall clock) and the guest clock at that moment. {@code icount} is null when the machine
 * does not count instructions.
 */
public record SnapshotInfo(
    String id,
    String name,
    long vmStateSizeBytes,
    long dateSec,
    long dateNsec,
    long vmClockSec,
    long vmClockNsec,
    Long icount) {
  public SnapshotInfo {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(name, "name");
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("id", id);
    o.put("name", name);
    o.put("vm-state-size", vmStateSizeBytes);
    o.put("date-sec", dateSec);
    o.put("date-nsec", dateNsec);
    o.put("vm-clock-sec", vmClockSec);
    o.put("vm-clock-nsec", vmClockNsec);
    if (icount != null) {
      o.put("icount", icount);
    }
    return o;
  }

  public static SnapshotInfo fromJson(JsonNode n) {
    return new SnapshotInfo(
        n.path("id").asText(),
        n.path("name").asText(),
        n.path("vm-state-size").asLong(),
        n.path("date-sec").asLong(),
        n.path("date-nsec").asLong(),
        n.path("vm-clock-sec").asLong(),
        n.path("vm-clock-nsec").asLong(),
        n.has("icount") ? n.get("icount").asLong() : null);
  }
}
