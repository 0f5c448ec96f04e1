package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A set of migration parameter values (QAPI {@code MigrationParameters} and {@code
 * MigrateSetParameters}): for {@code query-migrate-parameters} all the parameters the engine
 * honours; for {@code migrate-set-parameters} only the ones being changed. Immutable; values are held
 * as {@link MigrationParameter.Kind} says (Long, Boolean, String, or a JsonNode array).
 */
public final class MigrationParameters {
  private final Map<MigrationParameter, Object> values;

  private MigrationParameters(Map<MigrationParameter, Object> values) {
    this.values = values;
  }

  /** No parameters. */
  public static MigrationParameters empty() {
    return new MigrationParameters(new EnumMap<>(MigrationParameter.class));
  }

  /** A copy with {@code parameter} set; the value's type and range must fit the parameter. */
  public MigrationParameters with(MigrationParameter parameter, Object value) {
    Objects.requireNonNull(parameter, "parameter");
    checkValue(parameter, value);
    EnumMap<MigrationParameter, Object> copy = new EnumMap<>(MigrationParameter.class);
    copy.putAll(values);
    copy.put(parameter, value);
    return new MigrationParameters(copy);
  }

  /** A copy with every value of {@code other} laid over this one's. */
  public MigrationParameters merge(MigrationParameters other) {
    EnumMap<MigrationParameter, Object> copy = new EnumMap<>(MigrationParameter.class);
    copy.putAll(values);
    copy.putAll(other.values);
    return new MigrationParameters(copy);
  }

  private static void checkValue(MigrationParameter p, Object value) {
    Objects.requireNonNull(value, "value");
    boolean ok =
        switch (p.kind()) {
          case UINT8, UINT32, UINT64, SIZE ->
              value instanceof Long l && l >= 0 && l <= p.kind().max();
          case BOOL -> value instanceof Boolean;
          case STR -> value instanceof String;
          case ENUM ->
              value instanceof String s
                  && MigrationParameter.MULTIFD_COMPRESSION_VALUES.contains(s);
          case JSON_ARRAY -> value instanceof JsonNode n && n.isArray();
        };
    if (!ok) {
      throw new IllegalArgumentException(
          "bad value for " + p.wireName() + " (" + p.kind() + "): " + value);
    }
  }

  public boolean has(MigrationParameter p) {
    return values.containsKey(p);
  }

  /** The parameters present, in QAPI order. */
  public Set<MigrationParameter> present() {
    return Collections.unmodifiableSet(values.keySet());
  }

  /** The raw value or null. */
  public Object get(MigrationParameter p) {
    return values.get(p);
  }

  /** An integer parameter; throws IllegalStateException when absent. */
  public long getLong(MigrationParameter p) {
    return (Long) require(p);
  }

  public boolean getBoolean(MigrationParameter p) {
    return (Boolean) require(p);
  }

  public String getString(MigrationParameter p) {
    return (String) require(p);
  }

  private Object require(MigrationParameter p) {
    Object v = values.get(p);
    if (v == null) {
      throw new IllegalStateException("parameter " + p.wireName() + " is not set");
    }
    return v;
  }

  /** The QMP object, members in QAPI order. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    for (Map.Entry<MigrationParameter, Object> e : values.entrySet()) {
      String name = e.getKey().wireName();
      switch (e.getValue()) {
        case Long l -> o.put(name, l);
        case Boolean b -> o.put(name, b);
        case String s -> o.put(name, s);
        case JsonNode n -> o.set(name, n);
        default -> throw new IllegalStateException("unexpected value " + e.getValue());
      }
    }
    return o;
  }

  /**
   * Reads a QMP object whose members were already checked against the schema; unknown members are
   * an IllegalArgumentException.
   */
  public static MigrationParameters fromJson(JsonNode node) {
    MigrationParameters p = empty();
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      MigrationParameter param = MigrationParameter.byWireName(e.getKey());
      if (param == null) {
        throw new IllegalArgumentException("unknown migration parameter " + e.getKey());
      }
      JsonNode v = e.getValue();
      Object value =
          switch (param.kind()) {
            case UINT8, UINT32, UINT64, SIZE -> v.asLong();
            case BOOL -> v.asBoolean();
            case STR -> v.isNull() ? "" : v.asText();
            case ENUM -> v.asText();
            case JSON_ARRAY -> v;
          };
      p = p.with(param, value);
    }
    return p;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MigrationParameters m && m.values.equals(values);
  }

  @Override
  public int hashCode() {
    return values.hashCode();
  }

  @Override
  public String toString() {
    return "MigrationParameters" + values;
  }
}
