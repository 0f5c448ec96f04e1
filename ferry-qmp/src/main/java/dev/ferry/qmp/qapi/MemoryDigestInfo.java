package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.machine.MemoryDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The answer of Ferry's {@code ferry-memory-digest} ({@link MemoryDigest} on the wire):
 *
 * <pre>{@code
 * {"algorithm": "crc32c-4k", "ram": HEX16, "devices": HEX16, "bytes": N,
 *  "blocks": [{"name": "ram", "length": N, "digest": HEX16, "pages": [CRC, ...]}],
 *  "sections": [{"idstr": "cpu", "instance-id": 0, "length": N, "digest": HEX16}]}
 * }</pre>
 *
 * {@code pages} (each page's CRC32C as an unsigned number, index = offset / 4096) only when asked
 * for with {@code "pages": true}: 256 Ki numbers per GiB, for naming the first differing page.
 */
public final class MemoryDigestInfo {
  private MemoryDigestInfo() {}

  public static ObjectNode toJson(MemoryDigest d, boolean withPages) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("algorithm", d.algorithm());
    o.put("ram", d.ram());
    o.put("devices", d.devices());
    o.put("bytes", d.bytes());
    ArrayNode blocks = o.putArray("blocks");
    for (MemoryDigest.Block b : d.blocks()) {
      ObjectNode n = blocks.addObject().put("name", b.name()).put("length", b.length()).put("digest", b.digest());
      int[] pages = withPages ? d.pageDigests(b.name()) : null;
      if (pages != null) {
        ArrayNode arr = n.putArray("pages");
        for (int p : pages) {
          arr.add(Integer.toUnsignedLong(p));
        }
      }
    }
    ArrayNode sections = o.putArray("sections");
    for (MemoryDigest.Section s : d.sections()) {
      sections
          .addObject()
          .put("idstr", s.idstr())
          .put("instance-id", s.instanceId())
          .put("length", s.length())
          .put("digest", s.digest());
    }
    return o;
  }

  public static MemoryDigest fromJson(JsonNode n) {
    List<MemoryDigest.Block> blocks = new ArrayList<>();
    Map<String, int[]> pages = new LinkedHashMap<>();
    for (JsonNode b : n.path("blocks")) {
      String name = b.path("name").asText();
      blocks.add(new MemoryDigest.Block(name, b.path("length").asLong(), b.path("digest").asText()));
      JsonNode p = b.get("pages");
      if (p != null && p.isArray()) {
        int[] crcs = new int[p.size()];
        for (int i = 0; i < crcs.length; i++) {
          crcs[i] = (int) p.get(i).asLong();
        }
        pages.put(name, crcs);
      }
    }
    List<MemoryDigest.Section> sections = new ArrayList<>();
    for (JsonNode s : n.path("sections")) {
      sections.add(
          new MemoryDigest.Section(
              s.path("idstr").asText(), s.path("instance-id").asInt(), s.path("length").asLong(), s.path("digest").asText()));
    }
    return new MemoryDigest(
        n.path("algorithm").asText(),
        n.path("ram").asText(),
        n.path("devices").asText(),
        n.path("bytes").asLong(),
        blocks,
        sections,
        pages);
  }
}
