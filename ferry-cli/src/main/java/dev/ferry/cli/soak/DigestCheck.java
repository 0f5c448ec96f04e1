package dev.ferry.cli.soak;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.live.FerryChild;
import dev.ferry.qmp.QmpError;
import java.io.IOException;

/**
 * The soak's oracle: QMP {@code ferry-memory-digest} (every RAM block and all device state of a
 * paused machine) of the stopped source against the destination, taken after the load and before
 * the destination's guest first runs.
 */
final class DigestCheck {
  static final String COMMAND = "ferry-memory-digest";

  /**
   * @param equal null when the monitor has no digest command
   * @param detail what differs (the first block), or the digest itself when equal
   */
  record Result(Boolean equal, String detail) {}

  private DigestCheck() {}

  /** The digest, or null when the monitor does not know the command. */
  static JsonNode of(FerryChild c) throws IOException, InterruptedException {
    try {
      return c.qmp().execute(COMMAND, null);
    } catch (QmpError e) {
      if (e.errorClass() == dev.ferry.qmp.QmpErrorClass.COMMAND_NOT_FOUND) {
        return null;
      }
      throw new IOException(COMMAND + " on " + c.name() + ": " + e.getMessage(), e);
    }
  }

  static Result compare(FerryChild source, FerryChild destination) throws IOException, InterruptedException {
    JsonNode s = of(source);
    JsonNode d = s == null ? null : of(destination);
    if (s == null || d == null) {
      return new Result(null, "no " + COMMAND + " on the monitor");
    }
    if (s.path("ram").equals(d.path("ram")) && s.path("devices").equals(d.path("devices"))
        && s.path("blocks").equals(d.path("blocks"))) {
      return new Result(true, s.path("algorithm").asText() + " " + s.path("ram").asText());
    }
    return new Result(false, firstDifference(s, d));
  }

  /** {@code block 'pc.ram' (length ...): source X, destination Y}, or the device state. */
  static String firstDifference(JsonNode s, JsonNode d) {
    JsonNode sb = s.path("blocks");
    JsonNode db = d.path("blocks");
    for (int i = 0; i < Math.max(sb.size(), db.size()); i++) {
      JsonNode a = sb.path(i);
      JsonNode b = db.path(i);
      if (!a.equals(b)) {
        return "block " + (a.isMissingNode() ? "(none)" : "'" + a.path("name").asText() + "' length " + a.path("length").asLong())
            + " differs: source " + a.path("digest").asText("-") + ", destination "
            + (b.isMissingNode() ? "(none)" : "'" + b.path("name").asText() + "' " + b.path("digest").asText("-"));
      }
    }
    if (!s.path("devices").equals(d.path("devices"))) {
      return "device state differs: source " + s.path("devices").asText() + ", destination " + d.path("devices").asText();
    }
    return "RAM digest differs: source " + s.path("ram").asText() + ", destination " + d.path("ram").asText();
  }
}
