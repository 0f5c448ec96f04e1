package dev.ferry.cli.live;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.qmp.qapi.XbzrleCacheStats;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The report of one migration, for {@code ferry migrate} and {@code ferry demo} alike: the figures
 * of the final {@code query-migrate} answer as text rows ({@link #print}) and as one JSON document
 * ({@link #json}, units in the key names), plus what a caller adds (the demo's raw copy and
 * checks). Both forms are made by the same calls, so every figure of the text is in the JSON.
 */
public final class MigrationReport {
  /** One text row: name, value, note. */
  public record Row(String name, String value, String note) {}

  private final String title;
  private final MigrationInfo end;
  private final List<Row> rows = new ArrayList<>();
  private final ObjectNode json = JsonNodeFactory.instance.objectNode();
  private final ArrayNode checks;

  /**
   * @param title the first line (what migrated where), or null
   * @param downtimeLimitMs the limit in force, or null when the engine's default (300 ms)
   */
  public MigrationReport(String title, MigrationInfo end, Long downtimeLimitMs) {
    this.title = title;
    this.end = end;
    String status = end.status() == null ? "none" : end.status().qapiName();
    json.put("status", status);
    if (end.errorDesc() != null) {
      json.put("error-desc", end.errorDesc());
    }
    row("status", status, end.errorDesc() == null ? "" : end.errorDesc());
    long total = orZero(end.totalTimeMs());
    json.put("total-time-ms", total);
    row("total time", Units.millis(total), "");
    long limit = downtimeLimitMs == null ? 300 : downtimeLimitMs;
    json.put("downtime-limit-ms", limit);
    if (end.downtimeMs() != null) {
      json.put("downtime-ms", end.downtimeMs());
    } else {
      json.putNull("downtime-ms");
    }
    row("downtime", end.downtimeMs() == null ? "-" : Units.millis(end.downtimeMs()),
        "limit " + limit + " ms" + (downtimeLimitMs == null ? " (default)" : ""));
    json.put("setup-time-ms", orZero(end.setupTimeMs()));
    row("setup time", Units.millis(orZero(end.setupTimeMs())), "");
    MigrationStats ram = end.ram();
    if (ram != null) {
      json.put("transferred-bytes", ram.transferredBytes());
      row("transferred", Units.bytes(ram.transferredBytes()), Units.count(ram.transferredBytes()) + " bytes");
      json.put("ram-total-bytes", ram.totalBytes());
      row("RAM total", Units.bytes(ram.totalBytes()), "");
      json.put("zero-pages", ram.duplicatePages());
      json.put("zero-bytes", ram.duplicatePages() * ram.pageSizeBytes());
      row("zero pages", Units.count(ram.duplicatePages()), Units.bytes(ram.duplicatePages() * ram.pageSizeBytes()) + " of RAM");
      json.put("normal-pages", ram.normalPages());
      json.put("normal-bytes", ram.normalBytes());
      row("normal pages", Units.count(ram.normalPages()), Units.bytes(ram.normalBytes()));
      json.put("precopy-bytes", ram.precopyBytes());
      json.put("downtime-bytes", ram.downtimeBytes());
      json.put("postcopy-bytes", ram.postcopyBytes());
      row("precopy", Units.bytes(ram.precopyBytes()), "during downtime " + Units.bytes(ram.downtimeBytes()));
      double throughput = total > 0 ? ram.transferredBytes() * 1000.0 / total : 0;
      json.put("throughput-bytes-per-sec", Math.round(throughput));
      row("throughput", Units.rate(throughput), String.format(Locale.ROOT, "%.0f Mbit/s average", throughput * 8 / 1e6));
      json.put("page-size-bytes", ram.pageSizeBytes());
      json.put("dirty-sync-count", ram.dirtySyncCount());
      row("dirty syncs", Long.toString(ram.dirtySyncCount()), "passes over RAM");
    }
    XbzrleCacheStats x = end.xbzrleCache();
    if (x != null) {
      ObjectNode xj = json.putObject("xbzrle");
      xj.put("cache-size-bytes", x.cacheSizeBytes()).put("bytes", x.bytes()).put("pages", x.pages())
          .put("cache-miss", x.cacheMiss()).put("overflow", x.overflow());
      row("xbzrle", Units.count(x.pages()) + " pages",
          Units.bytes(x.bytes()) + ", " + x.cacheMiss() + " misses, " + x.overflow() + " overflows");
    }
    checks = json.putArray("checks");
  }

  private static long orZero(Long v) {
    return v == null ? 0 : v;
  }

  /** The final answer this report was made from. */
  public MigrationInfo end() {
    return end;
  }

  /** The JSON document (callers add their own members before printing it). */
  public ObjectNode json() {
    return json;
  }

  public List<Row> rows() {
    return List.copyOf(rows);
  }

  public String title() {
    return title;
  }

  /** Adds a text row (its figures go into the JSON by the caller). */
  public MigrationReport row(String name, String value, String note) {
    rows.add(new Row(name, value, note));
    return this;
  }

  /** Adds a check: a row and an entry of {@code checks} in the JSON. */
  public MigrationReport check(String name, boolean passed, String value, String detail) {
    checks.addObject().put("name", name).put("passed", passed).put("result", value).put("detail", detail);
    return row(name, value, detail);
  }

  /**
   * Adds the postcopy figures (object {@code postcopy} in the JSON): whether the migration switched,
   * precopy time, the pause (the downtime), postcopy time — the two times as polled, from the first
   * answer saying {@code postcopy-active} to the one saying {@code completed}, so within a poll
   * period — the pages requested by the destination ({@code postcopy-requests}), the pages sent in
   * the background (postcopy pages less requests), and from the destination's {@code query-migrate}
   * when given, the blocktime (all vCPUs at once, and per vCPU) and the fault latency p50 / p99 when
   * it reports them.
   *
   * @param destination the destination's final {@code query-migrate}, or null (ferry migrate has no
   *     monitor of the destination)
   */
  public MigrationReport postcopy(MigrationTimeline timeline, MigrationInfo destination,
      com.fasterxml.jackson.databind.JsonNode destinationRaw) {
    ObjectNode p = json.putObject("postcopy");
    Long switchMs = null;
    Long endMs = null;
    for (MigrationTimeline.Marker m : timeline.markers()) {
      if (m.kind().equals("phase") && m.label().equals("postcopy-active") && switchMs == null) {
        switchMs = m.timeMs();
      }
      if (m.kind().equals("phase") && m.label().equals("completed")) {
        endMs = m.timeMs();
      }
    }
    boolean switched = switchMs != null;
    p.put("switched", switched);
    if (!switched) {
      row("postcopy", "not reached", "completed as precopy (what was left fit the downtime limit, or it ended first)");
      return this;
    }
    long total = orZero(end.totalTimeMs());
    long pause = orZero(end.downtimeMs());
    long postMs = endMs == null ? 0 : Math.max(0, endMs - switchMs);
    long preMs = Math.max(0, total - postMs - pause);
    p.put("precopy-time-ms", preMs).put("pause-ms", pause).put("postcopy-time-ms", postMs);
    row("precopy time", Units.millis(preMs), "until the switch (as polled, within a poll period)");
    row("pause", Units.millis(pause), "guest stopped on both sides: discards, device state, RUN");
    row("postcopy", Units.millis(postMs), "guest running on the destination while RAM follows");
    MigrationStats ram = end.ram();
    if (ram != null) {
      long page = Math.max(1, ram.pageSizeBytes());
      long postPages = ram.postcopyBytes() / page;
      long background = Math.max(0, postPages - ram.postcopyRequests());
      p.put("pages-requested", ram.postcopyRequests()).put("background-pages", background)
          .put("postcopy-bytes", ram.postcopyBytes());
      row("requested", Units.count(ram.postcopyRequests()) + " pages", "asked for by the destination's faulting vCPUs");
      row("background", Units.count(background) + " pages", Units.bytes(ram.postcopyBytes()) + " sent after the switch in all");
    }
    if (destination != null && destination.postcopyBlocktimeMs() != null) {
      p.put("blocktime-ms", destination.postcopyBlocktimeMs());
      var a = p.putArray("vcpu-blocktime-ms");
      if (destination.postcopyVcpuBlocktimeMs() != null) {
        destination.postcopyVcpuBlocktimeMs().forEach(a::add);
      }
      row("blocktime", Units.millis(destination.postcopyBlocktimeMs()),
          "all vCPUs waiting at once; per vCPU " + destination.postcopyVcpuBlocktimeMs() + " ms");
    } else {
      p.putNull("blocktime-ms");
    }
    com.fasterxml.jackson.databind.JsonNode lat = destinationRaw == null ? null : destinationRaw.get("x-ferry-postcopy-fault-latency");
    if (lat != null && lat.has("p50-us")) {
      p.put("fault-latency-p50-us", lat.path("p50-us").asLong()).put("fault-latency-p99-us", lat.path("p99-us").asLong())
          .put("fault-latency-max-us", lat.path("max-us").asLong()).put("faults", lat.path("count").asLong());
      row("fault p50/99", lat.path("p50-us").asLong() + " / " + lat.path("p99-us").asLong() + " us",
          Units.count(lat.path("count").asLong()) + " faults, max " + lat.path("max-us").asLong() + " us");
    } else {
      p.putNull("fault-latency-p50-us");
      p.putNull("fault-latency-p99-us");
    }
    return this;
  }

  /**
   * Adds the disk figures of a block migration (object {@code disk} in the JSON) from {@code
   * query-migrate}'s {@code disk} member: bytes transferred, remaining and total, and the bulk
   * phase's rate (Ferry's {@code x-ferry-bulk-bytes} / {@code x-ferry-bulk-time-us}, once the bulk
   * phase is over). Null or missing (no block migration): nothing is added, {@code disk} is null.
   */
  public MigrationReport disk(com.fasterxml.jackson.databind.JsonNode disk) {
    if (disk == null || !disk.has("total")) {
      json.putNull("disk");
      return this;
    }
    long transferred = disk.path("transferred").asLong();
    long remaining = disk.path("remaining").asLong();
    long total = disk.path("total").asLong();
    ObjectNode d = json.putObject("disk").put("transferred-bytes", transferred).put("remaining-bytes", remaining)
        .put("total-bytes", total);
    row("disk", Units.bytes(transferred), "of " + Units.bytes(total) + " in all disks, " + Units.bytes(remaining) + " remaining");
    long bulkBytes = disk.path("x-ferry-bulk-bytes").asLong();
    long bulkUs = disk.path("x-ferry-bulk-time-us").asLong();
    if (bulkUs > 0) {
      double rate = bulkBytes * 1e6 / bulkUs;
      d.put("bulk-bytes", bulkBytes).put("bulk-time-ms", bulkUs / 1000).put("bulk-bytes-per-sec", Math.round(rate));
      row("disk bulk", Units.rate(rate), Units.bytes(bulkBytes) + " in " + Units.millis(bulkUs / 1000) + " (the first pass over the disks)");
    } else {
      d.putNull("bulk-bytes").putNull("bulk-time-ms").putNull("bulk-bytes-per-sec");
      row("disk bulk", "-", "the bulk phase did not end");
    }
    return this;
  }

  /** Adds the timeline's samples and markers to the JSON. */
  public MigrationReport timeline(MigrationTimeline t) {
    json.set("samples", t.samplesJson());
    json.set("markers", t.markersJson());
    return this;
  }

  /** The text report. */
  public void print(PrintStream out) {
    if (title != null) {
      out.println(title);
    }
    for (Row r : rows) {
      out.printf(Locale.ROOT, "  %-12s %14s%s%n", r.name(), r.value(), r.note().isEmpty() ? "" : "   " + r.note());
    }
    out.flush();
  }

  /** The JSON document, pretty-printed, as one document on {@code out}. */
  public void printJson(PrintStream out) {
    try {
      out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("a tree of plain nodes always serialises", e);
    }
    out.flush();
  }
}
