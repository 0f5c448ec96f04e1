package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One entry of {@code query-cpus-fast} (QAPI {@code CpuInfoFast}). {@code thread-id} is the JVM
 * thread id of the vCPU's thread (a Ferry vCPU is a Java thread; {@code jcmd PID Thread.print}
 * names it {@code vcpu-N} with this id).
 */
public record CpuInfoFast(int cpuIndex, String qomPath, long threadId, String target) {
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("cpu-index", cpuIndex);
    o.put("qom-path", qomPath);
    o.put("thread-id", threadId);
    o.put("target", target);
    return o;
  }

  public static CpuInfoFast fromJson(JsonNode n) {
    return new CpuInfoFast(
        n.path("cpu-index").asInt(), n.path("qom-path").asText(), n.path("thread-id").asLong(), n.path("target").asText());
  }
}
