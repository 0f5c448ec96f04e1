package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.migration.MigrationCapability;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The arguments of {@code migrate-set-capabilities} and {@code migrate-set-parameters} that a client
 * (ferry migrate, ferry demo, the soak) sends: capabilities as {@link MigrationCapabilityStatus},
 * parameters as {@link MigrationParameters} (type- and range-checked), so that no client writes
 * that JSON by hand. Capabilities keep the order they were set in; parameters QAPI's.
 */
public final class MigrationSettings {
  private final Map<MigrationCapability, Boolean> capabilities = new LinkedHashMap<>();
  private MigrationParameters parameters = MigrationParameters.empty();

  /** Sets {@code capability} on or off (a later call for the same one wins). */
  public MigrationSettings capability(MigrationCapability capability, boolean state) {
    capabilities.put(capability, state);
    return this;
  }

  /**
   * Sets {@code parameter}; {@code value} as {@link MigrationParameter.Kind} says: a number (held
   * as Long), a Boolean or a String.
   *
   * @throws IllegalArgumentException when the value does not fit the parameter
   */
  public MigrationSettings parameter(MigrationParameter parameter, Object value) {
    parameters = parameters.with(parameter, value instanceof Number n && !(value instanceof Long) ? n.longValue() : value);
    return this;
  }

  /** As {@link #parameter(MigrationParameter, Object)} by QMP name. */
  public MigrationSettings parameter(String wireName, Object value) {
    MigrationParameter p = MigrationParameter.byWireName(wireName);
    if (p == null) {
      throw new IllegalArgumentException("unknown migration parameter '" + wireName + "'");
    }
    return parameter(p, value);
  }

  public boolean hasCapabilities() {
    return !capabilities.isEmpty();
  }

  public boolean hasParameters() {
    return !parameters.present().isEmpty();
  }

  /** {@code {"capabilities": [{"capability": NAME, "state": BOOL}, ...]}}. */
  public ObjectNode capabilitiesArguments() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    ArrayNode list = o.putArray("capabilities");
    capabilities.forEach((c, on) -> list.add(new MigrationCapabilityStatus(c, on).toJson()));
    return o;
  }

  /** {@code {"max-bandwidth": N, ...}}, the parameters set. */
  public ObjectNode parametersArguments() {
    return parameters.toJson();
  }

  /** Sends these settings to {@code client}: migrate-set-capabilities, then migrate-set-parameters (each when set). */
  public void applyTo(dev.ferry.qmp.QmpClient client) throws java.io.IOException, dev.ferry.qmp.QmpError {
    if (hasCapabilities()) {
      client.execute("migrate-set-capabilities", capabilitiesArguments());
    }
    if (hasParameters()) {
      client.execute("migrate-set-parameters", parametersArguments());
    }
  }
}
