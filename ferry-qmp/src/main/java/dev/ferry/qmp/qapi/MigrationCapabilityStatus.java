package dev.ferry.qmp.qapi;

import dev.ferry.migration.MigrationCapability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Objects;

/** One capability and whether it is on (QAPI {@code MigrationCapabilityStatus}). */
public record MigrationCapabilityStatus(MigrationCapability capability, boolean state) {
  public MigrationCapabilityStatus {
    Objects.requireNonNull(capability, "capability");
  }

  /** {@code {"capability": NAME, "state": BOOL}}. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("capability", capability.qapiName());
    o.put("state", state);
    return o;
  }

  /** Reads the QMP shape; throws IllegalArgumentException on an unknown capability name. */
  public static MigrationCapabilityStatus fromJson(JsonNode node) {
    MigrationCapability c = MigrationCapability.fromQapiName(node.path("capability").asText());
    return new MigrationCapabilityStatus(c, node.path("state").asBoolean());
  }
}
