package dev.ferry.cli.system;

import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;

/** A digest of a child's whole guest RAM, read over its monitor. */
final class MemoryDigest {
  static final String COMMAND = "ferry-memory-hash";

  private MemoryDigest() {}

  /** The digest, or null when the monitor has no such command (then callers skip the comparison). */
  static String of(FerryChild c) throws Exception {
    try {
      return c.qmp().execute(COMMAND, null).toString();
    } catch (dev.ferry.qmp.QmpError e) {
      if (e.getMessage() != null && (e.getMessage().contains("not found") || e.getMessage().contains("not been found"))) {
        return null;
      }
      throw e;
    }
  }
}
