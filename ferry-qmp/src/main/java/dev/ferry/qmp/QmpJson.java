package dev.ferry.qmp;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.stream.JsonStrings;
import java.util.Iterator;
import java.util.Map;

/**
 * JSON as QEMU's monitor writes it: {@code ": "} after keys and {@code ", "} between members,
 * strings escaped as QEMU 7.2's JSON writer does ({@link JsonStrings.Style#QEMU}). Doubles use the shortest form that reads back exactly
 * (QEMU prints {@code %.17g}; both parse to the same value).
 */
final class QmpJson {
  /** Nesting deeper than this is refused, like QEMU's parser does. */
  static final int MAX_NESTING = 1024;

  /** The parser of every QMP text; trees are built by {@link JsonTrees} (no ObjectMapper to set up). */
  static final JsonFactory FACTORY =
      JsonFactory.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING).build())
          .build();

  /** For conversions to Java types (the server's object-add); made on first use. */
  static final class Mapper {
    static final ObjectMapper INSTANCE = new ObjectMapper(FACTORY);

    private Mapper() {}
  }

  private QmpJson() {}

  /** Parses one complete JSON value. */
  static JsonNode parse(byte[] bytes) throws JsonProcessingException {
    // QMP is UTF-8 (as QEMU's JSON lexer): decode strictly instead of letting Jackson guess an
    // encoding from the first bytes (NULs made it pick UTF-32; found by QmpFuzzTest)
    String text;
    try {
      text =
          java.nio.charset.StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
              .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
              .decode(java.nio.ByteBuffer.wrap(bytes))
              .toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new com.fasterxml.jackson.core.JsonParseException((JsonParser) null, "invalid UTF-8 in the input", e);
    }
    try {
      return JsonTrees.read(FACTORY.createParser(text));
    } catch (JsonProcessingException e) {
      throw e;
    } catch (java.io.IOException e) {
      throw new com.fasterxml.jackson.core.JsonParseException((JsonParser) null, e.getMessage(), e); // a String has no I/O
    }
  }

  /** Serialises {@code node} in QEMU's style, without a line end. */
  static String write(JsonNode node) {
    StringBuilder sb = new StringBuilder(128);
    write(node, sb);
    return sb.toString();
  }

  private static void write(JsonNode node, StringBuilder sb) {
    switch (node.getNodeType()) {
      case OBJECT -> {
        sb.append('{');
        Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
        while (it.hasNext()) {
          Map.Entry<String, JsonNode> e = it.next();
          JsonStrings.quote(sb, e.getKey(), JsonStrings.Style.QEMU);
          sb.append(": ");
          write(e.getValue(), sb);
          if (it.hasNext()) {
            sb.append(", ");
          }
        }
        sb.append('}');
      }
      case ARRAY -> {
        sb.append('[');
        for (int i = 0; i < node.size(); i++) {
          if (i > 0) {
            sb.append(", ");
          }
          write(node.get(i), sb);
        }
        sb.append(']');
      }
      case STRING -> JsonStrings.quote(sb, node.textValue(), JsonStrings.Style.QEMU);
      case BOOLEAN -> sb.append(node.booleanValue());
      case NULL, MISSING -> sb.append("null");
      case NUMBER -> {
        if (node.isIntegralNumber()) {
          sb.append(node.bigIntegerValue());
        } else {
          double d = node.doubleValue();
          if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            sb.append((long) d);
          } else {
            sb.append(d);
          }
        }
      }
      default -> throw new IllegalArgumentException("cannot write " + node.getNodeType());
    }
  }

}
