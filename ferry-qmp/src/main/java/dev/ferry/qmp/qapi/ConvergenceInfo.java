package dev.ferry.qmp.qapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Ferry's {@code ferry-convergence} member of {@code query-migrate} while precopy runs: whether it
 * converges and the figures that say why not. QEMU has no such member; its clients ignore it.
 *
 * @param converging false once the dirty set has stopped shrinking with the expected downtime above
 *     {@code downtime-limit}
 * @param dirtyBytesPerSec what the guest dirtied per second between the last two syncs
 * @param transferBytesPerSec what was sent per second between the last two syncs
 * @param downtimeGuardRefusals switch-overs called off because the rest would have exceeded the limit
 * @param reason the verdict in words, or null while converging
 * @param guardExpectedDowntimeMs what the rest would have taken with the guest stopped at the guard's
 *     last check ({@code downtime-guard-expected-downtime}), -1 (absent) before the guard ran
 * @param guardRefused whether that check refused the switch-over ({@code downtime-guard-last}:
 *     {@code refused} or {@code passed})
 */
public record ConvergenceInfo(
    boolean converging, long dirtyBytesPerSec, long transferBytesPerSec, long downtimeGuardRefusals, String reason,
    long guardExpectedDowntimeMs, boolean guardRefused) {

  /** Without a guard check yet. */
  public ConvergenceInfo(
      boolean converging, long dirtyBytesPerSec, long transferBytesPerSec, long downtimeGuardRefusals, String reason) {
    this(converging, dirtyBytesPerSec, transferBytesPerSec, downtimeGuardRefusals, reason, -1, false);
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("status", converging ? "converging" : "not-converging");
    o.put("dirty-rate", dirtyBytesPerSec);
    o.put("transfer-rate", transferBytesPerSec);
    o.put("downtime-guard-refusals", downtimeGuardRefusals);
    if (guardExpectedDowntimeMs >= 0) {
      o.put("downtime-guard-expected-downtime", guardExpectedDowntimeMs);
      o.put("downtime-guard-last", guardRefused ? "refused" : "passed");
    }
    if (reason != null) {
      o.put("reason", reason);
    }
    return o;
  }

  public static ConvergenceInfo fromJson(JsonNode n) {
    return new ConvergenceInfo(
        !"not-converging".equals(n.path("status").asText()),
        n.path("dirty-rate").asLong(),
        n.path("transfer-rate").asLong(),
        n.path("downtime-guard-refusals").asLong(),
        n.has("reason") ? n.get("reason").asText() : null,
        n.path("downtime-guard-expected-downtime").asLong(-1),
        "refused".equals(n.path("downtime-guard-last").asText()));
  }
}
