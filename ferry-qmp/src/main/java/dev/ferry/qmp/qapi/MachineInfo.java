package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.machine.MachineType;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * One entry of {@code query-machines} (QAPI {@code MachineInfo}): a machine type this build knows.
 * The members are QEMU 7.2's; {@code compat-props} (QEMU 9.1's, sent when the command's {@code
 * compat-props} argument is true) lists what the type pins, as {@code qom-type}, {@code property},
 * {@code value}.
 *
 * @param compatProps "driver.property=value" entries, or null when not asked for
 */
public record MachineInfo(String name, boolean isDefault, int cpuMax, String description, List<String> compatProps) {
  /** vCPUs a Ferry machine may have ({@code Machine.Builder#vcpus}). */
  public static final int CPU_MAX = 64;

  public MachineInfo {
    Objects.requireNonNull(name, "name");
  }

  /** The entry of {@code t}, with its compat properties when {@code compatProps}. */
  public static MachineInfo of(MachineType t, boolean compatProps) {
    return new MachineInfo(t.name(), t.isDefault(), CPU_MAX, t.description(), compatProps ? t.compatProperties() : null);
  }

  /** Every type of this build, oldest first. */
  public static List<MachineInfo> all(boolean compatProps) {
    List<MachineInfo> out = new ArrayList<>();
    for (MachineType t : MachineType.ALL) {
      out.add(of(t, compatProps));
    }
    return out;
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("name", name);
    if (isDefault) {
      o.put("is-default", true); // QEMU sends it only on the default type
    }
    o.put("cpu-max", cpuMax);
    o.put("hotpluggable-cpus", false);
    o.put("numa-mem-supported", false);
    o.put("deprecated", false);
    o.put("default-ram-id", "ram");
    o.put("acpi", false);
    o.put("x-ferry-description", description);
    if (compatProps != null) {
      ArrayNode a = o.putArray("compat-props");
      for (String p : compatProps) {
        int dot = p.indexOf('.');
        int eq = p.indexOf('=');
        a.addObject().put("qom-type", p.substring(0, dot)).put("property", p.substring(dot + 1, eq)).put("value", p.substring(eq + 1));
      }
    }
    return o;
  }

  public static MachineInfo fromJson(JsonNode n) {
    List<String> props = null;
    if (n.has("compat-props")) {
      props = new ArrayList<>();
      for (JsonNode p : n.get("compat-props")) {
        props.add(p.path("qom-type").asText() + "." + p.path("property").asText() + "=" + p.path("value").asText());
      }
    }
    return new MachineInfo(n.path("name").asText(), n.path("is-default").asBoolean(false), n.path("cpu-max").asInt(),
        n.path("x-ferry-description").asText(""), props);
  }
}
