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
 * for with {@code "pages": true}: 256 Ki numbers per GiB, for naming the first differing page. A
 * reply holds at most {@link #MAX_PAGES} of them (about 11 MiB of JSON, under a QMP client's 16
 * MiB message limit): a bigger machine is asked block by block in windows with {@code "block"},
 * {@code "offset"} and {@code "length"} (bytes, 4 KiB aligned), and the window's block then carries
 * {@code "pages-offset"}.
 */
public final class MemoryDigestInfo {
  /** Most page digests in one reply (4 GiB of RAM). */
  public static final int MAX_PAGES = 1 << 20;

  private static final int PAGE = 4096;

  private MemoryDigestInfo() {}

  /** Which page digests a reply carries: none, all, or a window of one block. */
  public record PageWindow(String block, long offset, long length) {
    public static final PageWindow NONE = new PageWindow(null, 0, 0);
    public static final PageWindow ALL = new PageWindow(null, 0, -1);

    boolean all() {
      return block == null && length < 0;
    }
  }

  /** The reply without page digests. */
  public static ObjectNode toJson(MemoryDigest d) {
    try {
      return toJson(d, PageWindow.NONE);
    } catch (IllegalArgumentException e) {
      throw new AssertionError(e);
    }
  }

  /**
   * The reply with the page digests {@code window} selects.
   *
   * @throws IllegalArgumentException for an unknown block, a window outside it or not 4 KiB aligned,
   *     or more than {@link #MAX_PAGES} pages (one line, for the QMP error)
   */
  public static ObjectNode toJson(MemoryDigest d, PageWindow asked) {
    return toJsonChecked(d, checked(d, asked));
  }

  private static PageWindow checked(MemoryDigest d, PageWindow window) {
    long asked = 0;
    if (window.all()) {
      asked = d.blocks().stream().mapToLong(b -> b.length() / PAGE).sum();
    } else if (window.block() != null) {
      String name = window.block();
      MemoryDigest.Block b =
          d.blocks().stream()
              .filter(x -> x.name().equals(name))
              .findFirst()
              .orElseThrow(() -> new IllegalArgumentException("no RAM block '" + name + "'"));
      long len = window.length() < 0 ? b.length() - window.offset() : window.length();
      if (window.offset() < 0 || len < 0 || window.offset() % PAGE != 0 || len % PAGE != 0
          || window.offset() > b.length() - len) {
        throw new IllegalArgumentException(
            "pages of block '" + b.name() + "' at offset " + window.offset() + " length " + len
                + ": must be 4 KiB aligned and inside its " + b.length() + " bytes");
      }
      window = new PageWindow(b.name(), window.offset(), len);
      asked = len / PAGE;
    }
    if (asked > MAX_PAGES) {
      throw new IllegalArgumentException(
          asked + " page digests asked for, at most " + MAX_PAGES + " a reply: ask with block, offset and length");
    }
    return window;
  }

  private static ObjectNode toJsonChecked(MemoryDigest d, PageWindow window) {

    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("algorithm", d.algorithm());
    o.put("ram", d.ram());
    o.put("devices", d.devices());
    o.put("bytes", d.bytes());
    ArrayNode blocks = o.putArray("blocks");
    for (MemoryDigest.Block b : d.blocks()) {
      ObjectNode n = blocks.addObject().put("name", b.name()).put("length", b.length()).put("digest", b.digest());
      int[] pages = window.all() || b.name().equals(window.block()) ? d.pageDigests(b.name()) : null;
      if (pages != null) {
        int from = window.all() ? 0 : (int) (window.offset() / PAGE);
        int to = window.all() ? pages.length : from + (int) (window.length() / PAGE);
        if (from != 0) {
          n.put("pages-offset", window.offset());
        }
        ArrayNode arr = n.putArray("pages");
        for (int i = from; i < to; i++) {
          arr.add(Integer.toUnsignedLong(pages[i]));
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

  /**
   * The page digests of block {@code name} in a reply (a window starts at its {@code
   * pages-offset}), or null when the reply has none for it.
   */
  public static int[] pages(JsonNode reply, String name) {
    for (JsonNode b : reply.path("blocks")) {
      if (b.path("name").asText().equals(name) && b.path("pages").isArray()) {
        return pages(b.get("pages"));
      }
    }
    return null;
  }

  private static int[] pages(JsonNode arr) {
    int[] crcs = new int[arr.size()];
    for (int i = 0; i < crcs.length; i++) {
      crcs[i] = (int) arr.get(i).asLong();
    }
    return crcs;
  }

  public static MemoryDigest fromJson(JsonNode n) {
    List<MemoryDigest.Block> blocks = new ArrayList<>();
    Map<String, int[]> pages = new LinkedHashMap<>();
    for (JsonNode b : n.path("blocks")) {
      String name = b.path("name").asText();
      blocks.add(new MemoryDigest.Block(name, b.path("length").asLong(), b.path("digest").asText()));
      // only a whole block's pages go into the digest; a window is read with pages()
      JsonNode p = b.get("pages");
      if (p != null && p.isArray() && b.path("pages-offset").asLong(0) == 0 && p.size() * (long) PAGE == b.path("length").asLong()) {
        pages.put(name, pages(p));
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
