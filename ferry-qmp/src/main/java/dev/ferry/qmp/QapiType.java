package dev.ferry.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A QAPI type, enough of one to check command arguments the way QEMU's input visitor does: each
 * declared member in order (missing, wrong JSON type, value out of range, enum value unknown), then
 * members nobody declared. Error texts follow QEMU's wording.
 */
sealed interface QapiType {

  /** The word QEMU's "expected: ..." message uses for this type. */
  String expected();

  /** Checks {@code value} (never null) found at {@code path}. */
  void check(JsonNode value, String path) throws QmpError;

  QapiType STR = new Scalar("string");
  QapiType BOOL = new Scalar("boolean");
  QapiType NUMBER = new Scalar("number");
  QapiType ANY = new Any();

  static QapiType uint(String cName, long max) {
    return new Int(cName, 0, max);
  }

  QapiType UINT8 = uint("uint8_t", 0xff);
  QapiType UINT32 = uint("uint32_t", 0xffff_ffffL);
  QapiType UINT64 = uint("uint64_t", Long.MAX_VALUE);
  QapiType INT = new Int("int64_t", Long.MIN_VALUE, Long.MAX_VALUE);

  /** A JSON string, number or boolean with no range. */
  record Scalar(String expected) implements QapiType {
    @Override
    public void check(JsonNode value, String path) throws QmpError {
      boolean ok =
          switch (expected) {
            case "string" -> value.isTextual();
            case "boolean" -> value.isBoolean();
            default -> value.isNumber();
          };
      if (!ok) {
        throw invalidType(path, expected);
      }
    }
  }

  /** Any JSON value. */
  record Any() implements QapiType {
    @Override
    public String expected() {
      return "any";
    }

    @Override
    public void check(JsonNode value, String path) {}
  }

  /** An integer within [min, max]; {@code cName} is what QEMU names it in range errors. */
  record Int(String cName, long min, long max) implements QapiType {
    @Override
    public String expected() {
      return "integer";
    }

    @Override
    public void check(JsonNode value, String path) throws QmpError {
      if (!value.isIntegralNumber()) {
        throw invalidType(path, "integer");
      }
      if (!value.canConvertToLong() || value.asLong() < min || value.asLong() > max) {
        throw QmpError.generic("Parameter '" + path + "' expects " + cName);
      }
    }
  }

  /** A string from a fixed set. */
  record Enum(List<String> values) implements QapiType {
    @Override
    public String expected() {
      return "string";
    }

    @Override
    public void check(JsonNode value, String path) throws QmpError {
      if (!value.isTextual()) {
        throw invalidType(path, "string");
      }
      if (!values.contains(value.asText())) {
        throw QmpError.generic(
            "Parameter '" + path + "' does not accept value '" + value.asText() + "'");
      }
    }
  }

  /** A string or JSON null (QAPI {@code StrOrNull}). */
  record StrOrNull() implements QapiType {
    @Override
    public String expected() {
      return "string";
    }

    @Override
    public void check(JsonNode value, String path) throws QmpError {
      if (!value.isTextual() && !value.isNull()) {
        throw invalidType(path, "string");
      }
    }
  }

  /** A JSON array of one element type. */
  record Array(QapiType element) implements QapiType {
    @Override
    public String expected() {
      return "array";
    }

    @Override
    public void check(JsonNode value, String path) throws QmpError {
      if (!value.isArray()) {
        throw invalidType(path, "array");
      }
      for (int i = 0; i < value.size(); i++) {
        element.check(value.get(i), path + "[" + i + "]");
      }
    }
  }

  /** A member of a struct. */
  record Member(String name, QapiType type, boolean optional) {
    static Member required(String name, QapiType type) {
      return new Member(name, type, false);
    }

    static Member optional(String name, QapiType type) {
      return new Member(name, type, true);
    }
  }

  /** A JSON object with declared members; the command argument schemas are these. */
  record Struct(List<Member> members) implements QapiType {
    static Struct of(Member... members) {
      return new Struct(List.of(members));
    }

    @Override
    public String expected() {
      return "object";
    }

    @Override
    public void check(JsonNode value, String path) throws QmpError {
      if (!value.isObject()) {
        throw invalidType(path, "object");
      }
      Set<String> declared = new HashSet<>();
      for (Member m : members) {
        declared.add(m.name());
        JsonNode v = value.get(m.name());
        String memberPath = path.isEmpty() ? m.name() : path + "." + m.name();
        if (v == null) {
          if (!m.optional()) {
            throw QmpError.generic("Parameter '" + memberPath + "' is missing");
          }
          continue;
        }
        m.type().check(v, memberPath);
      }
      for (Map.Entry<String, JsonNode> e : ((ObjectNode) value).properties()) {
        if (!declared.contains(e.getKey())) {
          String memberPath = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
          throw QmpError.generic("Parameter '" + memberPath + "' is unexpected");
        }
      }
    }
  }

  private static QmpError invalidType(String path, String expected) {
    return QmpError.generic(
        "Invalid parameter type for '" + (path.isEmpty() ? "null" : path) + "', expected: " + expected);
  }
}
