package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * Ferry's {@code ferry-query-cpu-registers}: the state of one CPU device (its VMState fields) for
 * HMP {@code info registers}. QEMU has no QMP command for registers (HMP reads the CPU directly);
 * Ferry's HMP runs on QMP only, hence this one.
 */
public record CpuRegisters(int cpuIndex, String program, long pc, long steps, long flags, List<Long> regs, List<Long> xregs) {
  public CpuRegisters {
    regs = List.copyOf(regs);
    xregs = List.copyOf(xregs);
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("cpu-index", cpuIndex);
    o.put("program", program);
    o.put("pc", pc);
    o.put("steps", steps);
    o.put("flags", flags);
    regs.forEach(o.putArray("regs")::add);
    xregs.forEach(o.putArray("xregs")::add);
    return o;
  }

  public static CpuRegisters fromJson(JsonNode n) {
    return new CpuRegisters(
        n.path("cpu-index").asInt(),
        n.path("program").asText(),
        n.path("pc").asLong(),
        n.path("steps").asLong(),
        n.path("flags").asLong(),
        longs(n.path("regs")),
        longs(n.path("xregs")));
  }

  private static List<Long> longs(JsonNode arr) {
    java.util.ArrayList<Long> l = new java.util.ArrayList<>();
    arr.forEach(v -> l.add(v.asLong()));
    return l;
  }
}
