package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * XBZRLE cache statistics of a migration (QAPI {@code XBZRLECacheStats}, the {@code xbzrle-cache}
 * member of {@code query-migrate}, present while the {@code xbzrle} capability is on).
 *
 * @param cacheSizeBytes size of the page cache
 * @param bytes encoded bytes sent
 * @param pages pages sent encoded
 * @param cacheMiss pages not found in the cache
 * @param cacheMissRate misses per page looked up (0..1)
 * @param encodingRate page bytes per encoded byte
 * @param overflow pages whose encoding did not fit, sent whole
 */
public record XbzrleCacheStats(
    long cacheSizeBytes,
    long bytes,
    long pages,
    long cacheMiss,
    double cacheMissRate,
    double encodingRate,
    long overflow) {

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("cache-size", cacheSizeBytes);
    o.put("bytes", bytes);
    o.put("pages", pages);
    o.put("cache-miss", cacheMiss);
    o.put("cache-miss-rate", cacheMissRate);
    o.put("encoding-rate", encodingRate);
    o.put("overflow", overflow);
    return o;
  }

  public static XbzrleCacheStats fromJson(JsonNode n) {
    return new XbzrleCacheStats(
        n.path("cache-size").asLong(),
        n.path("bytes").asLong(),
        n.path("pages").asLong(),
        n.path("cache-miss").asLong(),
        n.path("cache-miss-rate").asDouble(),
        n.path("encoding-rate").asDouble(),
        n.path("overflow").asLong());
  }
}
