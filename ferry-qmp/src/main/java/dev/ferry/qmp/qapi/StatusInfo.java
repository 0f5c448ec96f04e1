package dev.ferry.qmp.qapi;

import dev.ferry.machine.RunState;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Objects;

/** The answer of {@code query-status} (QAPI {@code StatusInfo}). */
public record StatusInfo(boolean running, boolean singlestep, RunState status) {
  public StatusInfo {
    Objects.requireNonNull(status, "status");
  }

  /** A status whose {@code running} flag follows the run state. */
  public static StatusInfo of(RunState status) {
    return new StatusInfo(status == RunState.RUNNING, false, status);
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("running", running);
    o.put("singlestep", singlestep);
    o.put("status", status.qapiName());
    return o;
  }

  public static StatusInfo fromJson(JsonNode node) {
    return new StatusInfo(
        node.path("running").asBoolean(),
        node.path("singlestep").asBoolean(),
        RunState.fromQapiName(node.path("status").asText()));
  }
}
