package dev.ferry.cli.analyze;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import java.io.IOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * Decodes a device section body guided only by its vmdesc entry, the way QEMU's analyzer does:
 * walk the described {@code fields} (an {@code array_len} stands for that many elements), read
 * {@code size} bytes per element, show integers by their type (uint* unsigned, int* signed, both
 * as zero-padded hex), bools as JSON booleans, structs as objects, anything else as hex bytes; then
 * every described subsection in order (0x05, name, be32 version, body).
 *
 * <p>The output has the analyzer's shapes exactly. Unlike the analyzer it checks what it can: each
 * subsection's name and version against the description, counts and sizes against what is left of
 * the stream (so a hostile description cannot make it allocate or loop beyond the input).
 */
final class VmsdDecoder {
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
  private static final HexFormat HEX = HexFormat.of();
  private static final Set<String> SIGNED =
      Set.of("int8", "int16", "int32", "int32 equal", "int32 le", "int64", "int64 equal", "uint8 equal", "uint16 equal");
  private static final Set<String> UNSIGNED = Set.of("uint8", "uint16", "uint32", "uint32 equal", "uint64");
  /** Deepest struct/subsection nesting accepted (a hostile description could recurse forever). */
  private static final int MAX_DEPTH = 64;
  /** Largest single field shown (the analyzer turns it into a hex string three times as long). */
  static final long MAX_FIELD_BYTES = 16L << 20;

  private final long streamLength;

  /** @param streamLength total stream bytes, to bound counts and sizes from the description */
  VmsdDecoder(long streamLength) {
    this.streamLength = streamLength;
  }

  /** Reads one device body described by {@code device} (a vmdesc "devices" entry). */
  ObjectNode readDevice(MigrationInput in, JsonNode device) throws IOException {
    return readStruct(in, device, 0);
  }

  private ObjectNode readStruct(MigrationInput in, JsonNode desc, int depth) throws IOException {
    if (depth > MAX_DEPTH) {
      throw new MigrationStreamException("vmdesc nests structs deeper than " + MAX_DEPTH, in.position());
    }
    ObjectNode data = NODES.objectNode();
    for (JsonNode field : expand(in, desc.path("fields"))) {
      String name = field.path("name").asText();
      JsonNode value;
      try {
        value = readField(in, field, depth);
      } catch (MigrationStreamException e) {
        throw e.inField(name);
      }
      JsonNode index = field.get("index");
      if (index != null) {
        JsonNode existing = data.get(name);
        ArrayNode list;
        if (existing == null) {
          list = data.putArray(name);
        } else if (existing instanceof ArrayNode a) {
          list = a;
        } else {
          throw new MigrationStreamException("vmdesc field '" + name + "' is both an array and a single value", in.position());
        }
        if (list.size() != index.asLong()) {
          throw new MigrationStreamException(
              "vmdesc array '" + name + "' element index " + index.asLong() + " does not follow element " + (list.size() - 1),
              in.position());
        }
        list.add(value);
      } else {
        data.set(name, value);
      }
    }
    JsonNode subsections = desc.get("subsections");
    if (subsections != null) {
      for (JsonNode sub : subsections) {
        String expected = sub.path("vmsd_name").asText();
        long at = in.position();
        int marker = in.readU8();
        if (marker != SectionType.SUBSECTION.code()) {
          throw new MigrationStreamException(
              String.format("subsection '%s' not found: expected 0x05, found 0x%02x", expected, marker), at);
        }
        String name = in.readCountedString();
        long version = in.readBe32Unsigned();
        if (!name.equals(expected)) {
          throw new MigrationStreamException(
              "unknown subsection '" + name + "' (the vmdesc describes '" + expected + "' here)", at);
        }
        long described = sub.path("version").asLong(-1);
        if (described >= 0 && version != described) {
          throw new MigrationStreamException(
              "subsection '" + name + "' version " + version + " differs from the vmdesc version " + described, at);
        }
        try {
          data.set(name, readStruct(in, sub, depth + 1));
        } catch (MigrationStreamException e) {
          throw e.inField(name);
        }
      }
    }
    return data;
  }

  /** The fields with each {@code array_len} expanded into elements with an {@code index}. */
  private List<JsonNode> expand(MigrationInput in, JsonNode fields) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    for (JsonNode f : fields) {
      JsonNode len = f.get("array_len");
      if (len == null) {
        out.add(f);
        continue;
      }
      long n = Math.max(1, len.asLong());
      long size = Math.max(1, f.path("size").asLong());
      long left = streamLength - in.position();
      if (n > left / size) {
        throw new MigrationStreamException(
            String.format(
                "vmdesc array '%s' of %d x %d bytes runs past the end of the stream (%d bytes left)",
                f.path("name").asText(), len.asLong(), f.path("size").asLong(), left),
            in.position());
      }
      for (long i = 0; i < n; i++) {
        ObjectNode c = ((ObjectNode) f).deepCopy();
        c.remove("array_len");
        c.put("index", i);
        out.add(c);
      }
    }
    return out;
  }

  private JsonNode readField(MigrationInput in, JsonNode field, int depth) throws IOException {
    String type = field.path("type").asText();
    if (type.equals("struct")) {
      JsonNode struct = field.get("struct");
      if (struct == null || !struct.isObject()) {
        throw new MigrationStreamException("vmdesc struct field without a 'struct' description", in.position());
      }
      return readStruct(in, struct, depth + 1);
    }
    long size = field.path("size").asLong(-1);
    if (size > MAX_FIELD_BYTES) {
      throw new MigrationStreamException(
          "vmdesc field size " + size + " exceeds the " + MAX_FIELD_BYTES + "-byte limit", in.position());
    }
    if (size < 0 || size > streamLength - in.position()) {
      throw new MigrationStreamException(
          "vmdesc field size " + field.path("size") + " runs past the end of the stream", in.position());
    }
    byte[] b = in.readBytes((int) size);
    if (type.equals("bool")) {
      if (b.length == 0) {
        throw new MigrationStreamException("vmdesc bool of size 0", in.position());
      }
      return NODES.booleanNode(b[0] != 0);
    }
    boolean signed = SIGNED.contains(type);
    if (signed || UNSIGNED.contains(type)) {
      return NODES.textNode(formatInt(b, signed));
    }
    return NODES.textNode(hexBytes(b));
  }

  /** "0x%0{2n}x" of the value; a negative signed value also shows its decimal: "0xff (-1)". */
  static String formatInt(byte[] b, boolean signed) {
    BigInteger unsigned = new BigInteger(1, b);
    String hex = unsigned.toString(16);
    StringBuilder sb = new StringBuilder("0x");
    for (int i = hex.length(); i < 2 * b.length; i++) {
      sb.append('0');
    }
    sb.append(hex);
    if (signed && b.length > 0 && b[0] < 0) {
      sb.append(" (").append(new BigInteger(b)).append(')');
    }
    return sb.toString();
  }

  /** Bytes as two-digit hex separated by spaces ("00 1f"). */
  static String hexBytes(byte[] b) {
    StringBuilder sb = new StringBuilder(b.length * 3);
    for (int i = 0; i < b.length; i++) {
      if (i > 0) {
        sb.append(' ');
      }
      sb.append(HEX.toHexDigits(b[i]));
    }
    return sb.toString();
  }
}
