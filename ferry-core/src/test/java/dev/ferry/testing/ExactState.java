package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;

/**
 * The exact comparison of two stopped machines in-process, e.g. the stopped source of a migration
 * and its destination before it runs: their {@link MachineHost#memoryDigest()}s (every RAM block
 * and all device state) are equal. A difference names the block and the first differing page, or
 * the device section.
 */
public final class ExactState {
  private ExactState() {}

  public static void assertSame(MachineHost source, MachineHost destination) {
    assertThat(source.machine().isRunning()).as("source must be stopped for the comparison").isFalse();
    assertThat(destination.machine().isRunning()).as("destination must be stopped for the comparison").isFalse();
    MemoryDigest a = source.memoryDigest();
    MemoryDigest b = destination.memoryDigest();
    assertThat(a.firstDifference(b)).as("digest of the source vs the destination").isEmpty();
    assertThat(a.blocks()).isNotEmpty();
    assertThat(a.sections()).isNotEmpty();
  }
}
