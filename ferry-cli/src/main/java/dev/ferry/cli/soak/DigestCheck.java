package dev.ferry.cli.soak;

import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import java.io.IOException;
import java.util.Optional;

/**
 * The soak's oracle: QMP {@code ferry-memory-digest} (every RAM block and all device state of a
 * paused machine) of the stopped source against the destination, taken after the load and before
 * the destination's guest first runs. On a mismatch both sides are asked again with page digests,
 * so the difference names the first differing block and page.
 */
final class DigestCheck {
  /**
   * @param equal whether the digests are equal
   * @param detail the digest when equal, else where they first part
   */
  record Result(boolean equal, String detail) {}

  private DigestCheck() {}

  /** A child's digest (a running guest is paused for it). */
  static MemoryDigest of(FerryChild c, boolean pages) throws IOException, InterruptedException {
    return MemoryDigestInfo.fromJson(LiveMigration.execute(c.qmp(), "ferry-memory-digest",
        pages ? com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode().put("pages", true) : null));
  }

  static Result compare(FerryChild source, FerryChild destination) throws IOException, InterruptedException {
    MemoryDigest s = of(source, false);
    MemoryDigest d = of(destination, false);
    Optional<String> diff = s.firstDifference(d);
    if (diff.isEmpty()) {
      return new Result(true, "ram " + s.ram() + ", devices " + s.devices() + ", " + s.bytes() + " bytes");
    }
    // both are stopped: a second pass with page digests sees what the first saw
    return new Result(false, of(source, true).firstDifference(of(destination, true)).orElse(diff.get() + " (equal on a second pass)"));
  }
}
