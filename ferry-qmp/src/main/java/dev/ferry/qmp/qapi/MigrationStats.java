package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * RAM statistics of a migration (QAPI {@code MigrationStats}, the {@code ram} member of {@code
 * query-migrate}). Counts of pages are pages; everything named bytes is bytes; {@code mbps} is
 * megabits per second as QEMU computes it.
 */
public record MigrationStats(
    long transferredBytes,
    long remainingBytes,
    long totalBytes,
    long duplicatePages,
    long skippedPages,
    long normalPages,
    long normalBytes,
    long dirtyPagesRate,
    double mbps,
    long dirtySyncCount,
    long postcopyRequests,
    long pageSizeBytes,
    long multifdBytes,
    long pagesPerSecond,
    long precopyBytes,
    long downtimeBytes,
    long postcopyBytes,
    long dirtySyncMissedZeroCopy) {

  /** All zero, with the given page size. */
  public static MigrationStats empty(long pageSizeBytes) {
    return new MigrationStats(0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, pageSizeBytes, 0, 0, 0, 0, 0, 0);
  }

  /** The QMP member names and order of QEMU 7.2. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("transferred", transferredBytes);
    o.put("remaining", remainingBytes);
    o.put("total", totalBytes);
    o.put("duplicate", duplicatePages);
    o.put("skipped", skippedPages);
    o.put("normal", normalPages);
    o.put("normal-bytes", normalBytes);
    o.put("dirty-pages-rate", dirtyPagesRate);
    o.put("mbps", mbps);
    o.put("dirty-sync-count", dirtySyncCount);
    o.put("postcopy-requests", postcopyRequests);
    o.put("page-size", pageSizeBytes);
    o.put("multifd-bytes", multifdBytes);
    o.put("pages-per-second", pagesPerSecond);
    o.put("precopy-bytes", precopyBytes);
    o.put("downtime-bytes", downtimeBytes);
    o.put("postcopy-bytes", postcopyBytes);
    o.put("dirty-sync-missed-zero-copy", dirtySyncMissedZeroCopy);
    return o;
  }

  public static MigrationStats fromJson(JsonNode n) {
    return new MigrationStats(
        n.path("transferred").asLong(),
        n.path("remaining").asLong(),
        n.path("total").asLong(),
        n.path("duplicate").asLong(),
        n.path("skipped").asLong(),
        n.path("normal").asLong(),
        n.path("normal-bytes").asLong(),
        n.path("dirty-pages-rate").asLong(),
        n.path("mbps").asDouble(),
        n.path("dirty-sync-count").asLong(),
        n.path("postcopy-requests").asLong(),
        n.path("page-size").asLong(),
        n.path("multifd-bytes").asLong(),
        n.path("pages-per-second").asLong(),
        n.path("precopy-bytes").asLong(),
        n.path("downtime-bytes").asLong(),
        n.path("postcopy-bytes").asLong(),
        n.path("dirty-sync-missed-zero-copy").asLong());
  }
}
