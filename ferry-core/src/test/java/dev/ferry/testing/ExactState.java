package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import java.io.IOException;
import java.util.List;

/**
 * The exact comparison of two stopped machines in-process: their digests ({@link
 * MachineHost#memoryDigest()}, the project's oracle; a difference names the first differing block
 * and page), and then, the guests being small, every RAM block byte for byte and every device's
 * state as the bytes its section would save.
 */
public final class ExactState {
  private ExactState() {}

  public static void assertSame(MachineHost source, MachineHost destination) throws IOException {
    assertThat(source.machine().isRunning()).as("source must be stopped for the comparison").isFalse();
    assertThat(destination.machine().isRunning()).as("destination must be stopped for the comparison").isFalse();
    MemoryDigest a = source.memoryDigest();
    MemoryDigest b = destination.memoryDigest();
    assertThat(a.firstDifference(b)).as("digest of the source vs the destination").isEmpty();
    assertThat(b).isEqualTo(a);
    assertSame(source.machine(), destination.machine());
  }

  public static void assertSame(Machine source, Machine destination) throws IOException {
    assertThat(source.isRunning()).as("source must be stopped for the comparison").isFalse();
    assertThat(destination.isRunning()).as("destination must be stopped for the comparison").isFalse();
    List<RamBlock> a = source.ramBlocks();
    List<RamBlock> b = destination.ramBlocks();
    assertThat(b.stream().map(RamBlock::name).toList()).isEqualTo(a.stream().map(RamBlock::name).toList());
    for (int i = 0; i < a.size(); i++) {
      RamBlock x = a.get(i);
      RamBlock y = b.get(i);
      assertThat(y.usedLength()).as("length of block " + x.name()).isEqualTo(x.usedLength());
      long at = x.memory().mismatch(y.memory());
      if (at >= 0) {
        throw new AssertionError("RAM differs in block " + x.name() + " at page 0x" + Long.toHexString(at & ~4095L)
            + " (byte 0x" + Long.toHexString(at) + ")");
      }
    }
    List<SaveStateEntry> da = source.stateEntries();
    List<SaveStateEntry> db = destination.stateEntries();
    assertThat(db.size()).isEqualTo(da.size());
    for (int i = 0; i < da.size(); i++) {
      SaveStateEntry e = da.get(i);
      assertThat(save(db.get(i))).as("state of device " + e.idstr() + " " + e.instanceId()).isEqualTo(save(e));
    }
    assertThat(destination.drives().size()).as("drives").isEqualTo(source.drives().size());
    for (int i = 0; i < source.drives().size(); i++) {
      var x = source.drives().get(i);
      var y = destination.drives().get(i);
      assertThat(y.sizeBytes()).as("size of drive " + x.name()).isEqualTo(x.sizeBytes());
      long at = java.nio.file.Files.mismatch(x.path(), y.path());
      if (at >= 0) {
        throw new AssertionError("disk content differs in drive " + x.name() + " at byte 0x" + Long.toHexString(at));
      }
    }
  }

  private static byte[] save(SaveStateEntry e) throws IOException {
    MemoryChannel sink = MemoryChannel.sink();
    try (MigrationOutput out = new MigrationOutput(sink)) {
      e.save(out, new QemuJsonWriter());
    }
    return sink.written();
  }
}
