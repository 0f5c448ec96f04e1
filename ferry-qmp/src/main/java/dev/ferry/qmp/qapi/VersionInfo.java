package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Objects;

/**
 * The version a monitor reports in its greeting and in {@code query-version} (QAPI {@code
 * VersionInfo}). Ferry reports the QEMU release whose protocol it speaks (7.2.0), not its own
 * version, because QMP tools gate features on that triple; Ferry names itself in {@code package}.
 */
public record VersionInfo(int major, int minor, int micro, String packageName) {
  /** What Ferry reports: QEMU 7.2.0, package {@code ferry-0.1.0}. */
  public static final VersionInfo FERRY = new VersionInfo(7, 2, 0, "ferry-0.1.0");

  public VersionInfo {
    Objects.requireNonNull(packageName, "packageName");
  }

  /** {@code {"qemu": {"micro", "minor", "major"}, "package"}} in QEMU's member order. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    ObjectNode q = o.putObject("qemu");
    q.put("micro", micro);
    q.put("minor", minor);
    q.put("major", major);
    o.put("package", packageName);
    return o;
  }

  public static VersionInfo fromJson(JsonNode node) {
    JsonNode q = node.path("qemu");
    return new VersionInfo(
        q.path("major").asInt(),
        q.path("minor").asInt(),
        q.path("micro").asInt(),
        node.path("package").asText());
  }
}
