package dev.ferry.qmp;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;

/**
 * JSON text to a Jackson tree with the streaming parser alone, for the commands that must start
 * fast ({@code ferry monitor}'s QMP client, {@code ferry analyze}'s vmdesc): an {@code ObjectMapper}'s
 * set-up (class initialisers, serializer and deserializer factories) cost a fresh JVM 40 ms and more
 * of such a command's run, more than the parse. The tree is the one {@code ObjectMapper.readTree}
 * makes with its defaults: integers as int, long or BigInteger nodes by size, other numbers as
 * doubles, a repeated key's last value in its first place (unless the parser refuses duplicates),
 * content after the first value ignored, no content a missing node. Limits and strictness are the
 * parser's (its factory's features and StreamReadConstraints).
 */
public final class JsonTrees {
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private JsonTrees() {}

  /** Reads one value from {@code p} and closes it. */
  public static JsonNode read(JsonParser p) throws IOException {
    try (p) {
      JsonToken t = p.nextToken();
      return t == null ? MissingNode.getInstance() : value(p, t);
    }
  }

  private static JsonNode value(JsonParser p, JsonToken t) throws IOException {
    return switch (t) {
      case START_OBJECT -> {
        ObjectNode o = NODES.objectNode();
        for (String k = p.nextFieldName(); k != null; k = p.nextFieldName()) {
          o.set(k, value(p, p.nextToken()));
        }
        yield o;
      }
      case START_ARRAY -> {
        ArrayNode a = NODES.arrayNode();
        for (JsonToken x = p.nextToken(); x != JsonToken.END_ARRAY; x = p.nextToken()) {
          a.add(value(p, x));
        }
        yield a;
      }
      case VALUE_STRING -> NODES.textNode(p.getText());
      case VALUE_NUMBER_INT -> switch (p.getNumberType()) {
        case INT -> NODES.numberNode(p.getIntValue());
        case LONG -> NODES.numberNode(p.getLongValue());
        default -> NODES.numberNode(p.getBigIntegerValue());
      };
      case VALUE_NUMBER_FLOAT -> NODES.numberNode(p.getDoubleValue());
      case VALUE_TRUE -> NODES.booleanNode(true);
      case VALUE_FALSE -> NODES.booleanNode(false);
      case VALUE_NULL -> NODES.nullNode();
      default -> throw new JsonParseException(p, "Unexpected token (" + t + ")");
    };
  }
}
