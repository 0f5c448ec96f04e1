package dev.ferry.qmp.qapi;

import dev.ferry.migration.MigrationStatus;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The answer of {@code query-migrate} (QAPI {@code MigrationInfo}). A null member is absent from the
 * JSON, as in QEMU: before any migration {@code status} is null and the answer is {@code {}};
 * {@code downtimeMs} appears once the migration completed, {@code expectedDowntimeMs} while it is
 * active, {@code errorDesc} when it failed.
 */
public record MigrationInfo(
    MigrationStatus status,
    MigrationStats ram,
    Long totalTimeMs,
    Long setupTimeMs,
    Long downtimeMs,
    Long expectedDowntimeMs,
    String errorDesc,
    Long cpuThrottlePercentage,
    XbzrleCacheStats xbzrleCache,
    java.util.List<String> socketAddress,
    Long postcopyBlocktimeMs,
    java.util.List<Long> postcopyVcpuBlocktimeMs,
    ConvergenceInfo convergence) {

  public MigrationInfo {
    socketAddress = socketAddress == null ? null : java.util.List.copyOf(socketAddress);
    postcopyVcpuBlocktimeMs = postcopyVcpuBlocktimeMs == null ? null : java.util.List.copyOf(postcopyVcpuBlocktimeMs);
  }

  /** Without postcopy blocktime (only a completed postcopy destination has it) and convergence figures. */
  public MigrationInfo(
      MigrationStatus status,
      MigrationStats ram,
      Long totalTimeMs,
      Long setupTimeMs,
      Long downtimeMs,
      Long expectedDowntimeMs,
      String errorDesc,
      Long cpuThrottlePercentage,
      XbzrleCacheStats xbzrleCache,
      java.util.List<String> socketAddress) {
    this(status, ram, totalTimeMs, setupTimeMs, downtimeMs, expectedDowntimeMs, errorDesc, cpuThrottlePercentage, xbzrleCache,
        socketAddress, null, null, null);
  }

  /** Without {@code socket-address} (the outgoing side). */
  public MigrationInfo(
      MigrationStatus status,
      MigrationStats ram,
      Long totalTimeMs,
      Long setupTimeMs,
      Long downtimeMs,
      Long expectedDowntimeMs,
      String errorDesc,
      Long cpuThrottlePercentage,
      XbzrleCacheStats xbzrleCache) {
    this(status, ram, totalTimeMs, setupTimeMs, downtimeMs, expectedDowntimeMs, errorDesc, cpuThrottlePercentage, xbzrleCache, null);
  }

  /** Without XBZRLE statistics (the capability is off). */
  public MigrationInfo(
      MigrationStatus status,
      MigrationStats ram,
      Long totalTimeMs,
      Long setupTimeMs,
      Long downtimeMs,
      Long expectedDowntimeMs,
      String errorDesc,
      Long cpuThrottlePercentage) {
    this(status, ram, totalTimeMs, setupTimeMs, downtimeMs, expectedDowntimeMs, errorDesc, cpuThrottlePercentage, null);
  }

  /** No migration has happened: {@code {}}. */
  public static final MigrationInfo NONE =
      new MigrationInfo(null, null, null, null, null, null, null, null);

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    if (status != null) {
      o.put("status", status.qapiName());
    }
    if (ram != null) {
      o.set("ram", ram.toJson());
    }
    if (xbzrleCache != null) {
      o.set("xbzrle-cache", xbzrleCache.toJson());
    }
    if (totalTimeMs != null) {
      o.put("total-time", totalTimeMs);
    }
    if (expectedDowntimeMs != null) {
      o.put("expected-downtime", expectedDowntimeMs);
    }
    if (downtimeMs != null) {
      o.put("downtime", downtimeMs);
    }
    if (setupTimeMs != null) {
      o.put("setup-time", setupTimeMs);
    }
    if (cpuThrottlePercentage != null) {
      o.put("cpu-throttle-percentage", cpuThrottlePercentage);
    }
    if (errorDesc != null) {
      o.put("error-desc", errorDesc);
    }
    if (socketAddress != null) {
      var arr = o.putArray("socket-address");
      for (String uri : socketAddress) {
        ObjectNode a = arr.addObject();
        if (uri.startsWith("unix:")) {
          a.put("type", "unix").put("path", uri.substring("unix:".length()));
        } else if (uri.startsWith("tcp:")) {
          String hp = uri.substring("tcp:".length());
          int colon = hp.lastIndexOf(':');
          String host = hp.substring(0, colon);
          if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
          }
          a.put("type", "inet").put("host", host).put("port", hp.substring(colon + 1));
        } else {
          a.put("type", "uri").put("uri", uri); // Ferry: fd:, exec:, file: have no SocketAddress form
        }
      }
    }
    if (postcopyBlocktimeMs != null) {
      o.put("postcopy-blocktime", postcopyBlocktimeMs);
    }
    if (postcopyVcpuBlocktimeMs != null) {
      var a = o.putArray("postcopy-vcpu-blocktime");
      postcopyVcpuBlocktimeMs.forEach(a::add);
    }
    if (convergence != null) {
      o.set("ferry-convergence", convergence.toJson());
    }
    return o;
  }

  public static MigrationInfo fromJson(JsonNode n) {
    return new MigrationInfo(
        n.has("status") ? MigrationStatus.fromQapiName(n.get("status").asText()) : null,
        n.has("ram") ? MigrationStats.fromJson(n.get("ram")) : null,
        longOrNull(n, "total-time"),
        longOrNull(n, "setup-time"),
        longOrNull(n, "downtime"),
        longOrNull(n, "expected-downtime"),
        n.has("error-desc") ? n.get("error-desc").asText() : null,
        longOrNull(n, "cpu-throttle-percentage"),
        n.has("xbzrle-cache") ? XbzrleCacheStats.fromJson(n.get("xbzrle-cache")) : null,
        n.has("socket-address") ? socketAddresses(n.get("socket-address")) : null,
        n.has("postcopy-blocktime") ? n.get("postcopy-blocktime").asLong() : null,
        n.has("postcopy-vcpu-blocktime")
            ? java.util.stream.StreamSupport.stream(n.get("postcopy-vcpu-blocktime").spliterator(), false)
                .map(JsonNode::asLong)
                .toList()
            : null,
        n.has("ferry-convergence") ? ConvergenceInfo.fromJson(n.get("ferry-convergence")) : null);
  }

  /** {@code SocketAddress} objects back to URIs ({@code tcp:HOST:PORT}, {@code unix:PATH}). */
  private static java.util.List<String> socketAddresses(JsonNode arr) {
    java.util.List<String> l = new java.util.ArrayList<>();
    for (JsonNode a : arr) {
      switch (a.path("type").asText()) {
        case "unix" -> l.add("unix:" + a.path("path").asText());
        case "inet" -> {
          String h = a.path("host").asText();
          l.add("tcp:" + (h.contains(":") ? "[" + h + "]" : h) + ":" + a.path("port").asText());
        }
        default -> l.add(a.path("uri").asText());
      }
    }
    return l;
  }

  private static Long longOrNull(JsonNode n, String name) {
    return n.has(name) ? n.get(name).asLong() : null;
  }
}
