package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.vmstate.QemuJsonWriter;
import java.io.IOException;
import java.util.List;

/**
 * The exact comparison of two stopped machines in-process (until {@code MachineHost.memoryDigest()}
 * exists): every RAM block byte for byte, and every device's state as the bytes its section would
 * save. A difference names the block and the first differing page, or the device.
 */
public final class ExactState {
  private ExactState() {}

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
  }

  private static byte[] save(SaveStateEntry e) throws IOException {
    MemoryChannel sink = MemoryChannel.sink();
    try (MigrationOutput out = new MigrationOutput(sink)) {
      e.save(out, new QemuJsonWriter());
    }
    return sink.written();
  }
}
