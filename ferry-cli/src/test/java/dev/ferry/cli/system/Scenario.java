package dev.ferry.cli.system;

import dev.ferry.cli.live.LiveMigration.Transport;

/**
 * One process-level migration case, in the manner of QEMU's migration-test {@code MigrateCommon}:
 * the transport (which fixes the listen and connect URIs), the guest, the capabilities, and what
 * must happen.
 *
 * @param memoryBytes guest RAM of both sides
 * @param program stress, random, fill or idle
 * @param xbzrle the xbzrle capability on the source
 * @param maxBandwidthBytesPerSec null for the engine's default
 * @param expect the expected end of the migration
 */
record Scenario(
    Transport transport, String program, long memoryBytes, boolean xbzrle, Long maxBandwidthBytesPerSec, Expect expect) {

  enum Expect {
    /** Completes; the destination's memory equals the source's and the guest runs on. */
    SUCCEED
  }

  static Scenario of(Transport t, String program) {
    return new Scenario(t, program, 32L << 20, false, null, Expect.SUCCEED);
  }

  Scenario withXbzrle() {
    return new Scenario(transport, program, memoryBytes, true, maxBandwidthBytesPerSec, expect);
  }

  Scenario withMemory(long bytes) {
    return new Scenario(transport, program, bytes, xbzrle, maxBandwidthBytesPerSec, expect);
  }

  @Override
  public String toString() {
    return transport.scheme() + " × " + program + " (" + (memoryBytes >> 20) + " MiB" + (xbzrle ? ", xbzrle" : "") + ")";
  }
}
