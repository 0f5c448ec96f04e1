package dev.ferry.cli.system;

import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;

/** A digest of a child's whole guest RAM, read over its monitor. */
final class MemoryDigest {
  static final String COMMAND = "ferry-memory-hash";

  private MemoryDigest() {}

  static String of(FerryChild c) throws Exception {
    return LiveMigration.execute(c.qmp(), COMMAND, null).toString();
  }
}
