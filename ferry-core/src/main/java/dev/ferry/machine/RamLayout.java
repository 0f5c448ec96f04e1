package dev.ferry.machine;

import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.ForwardingSaveStateEntry;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The RAM layout of the saving machine — each block's name, length and page size — as a small
 * VMState device {@code ferry-ram-layout}. QEMU 7.2's RAM block list carries a block's page size
 * only when postcopy is advised, so without this a snapshot of a machine with 2 MiB-page blocks
 * would load into one with 4 KiB pages (and vice versa) unnoticed. Being a plain VMState section it
 * stays readable by QEMU's analyzer. The load fails, naming the block, before the machine can run.
 */
final class RamLayout {
  static final int NAME_BYTES = 128;
  static final int MAX_BLOCKS = 64;

  static final class Block {
    final byte[] name = new byte[NAME_BYTES];
    long size;
    long pageSize;

    String name() {
      int n = 0;
      while (n < NAME_BYTES && name[n] != 0) {
        n++;
      }
      return new String(name, 0, n, StandardCharsets.ISO_8859_1);
    }
  }

  private static final VMStateDescription<Block> BLOCK =
      VMStateDescription.<Block>builder("ferry-ram-block")
          .version(1)
          .buffer("name", NAME_BYTES, b -> b.name)
          .uint64("size", b -> b.size, (b, v) -> b.size = v)
          .uint32("page_size", b -> b.pageSize, (b, v) -> b.pageSize = v)
          .build();

  private final List<RamBlock> local;
  private final List<Block> blocks = new ArrayList<>();
  private long count;

  static final VMStateDescription<RamLayout> VMSTATE =
      VMStateDescription.<RamLayout>builder("ferry-ram-layout")
          .version(1)
          .preSave(RamLayout::describeLocal)
          .uint32("count", l -> l.count, (l, v) -> l.count = v)
          .structVarArray("blocks", "count", MAX_BLOCKS, BLOCK, l -> l.blocks, Block::new)
          .postLoad((l, version) -> l.checkAgainstLocal())
          .build();

  RamLayout(List<RamBlock> local) {
    this.local = List.copyOf(local);
  }

  private void describeLocal() {
    blocks.clear();
    for (RamBlock r : local) {
      Block b = new Block();
      byte[] n = r.name().getBytes(StandardCharsets.ISO_8859_1);
      System.arraycopy(n, 0, b.name, 0, Math.min(n.length, NAME_BYTES - 1));
      b.size = r.usedLength();
      b.pageSize = r.pageSize();
      blocks.add(b);
    }
    count = blocks.size();
  }

  private void checkAgainstLocal() {
    for (Block b : blocks) {
      RamBlock r = local.stream().filter(x -> x.name().equals(b.name())).findFirst().orElse(null);
      if (r == null) {
        throw new IllegalArgumentException(
            "RAM block '" + b.name() + "' of the stream does not exist on this machine");
      }
      if (r.pageSize() != b.pageSize) {
        throw new IllegalArgumentException(
            "RAM block '" + b.name() + "' has " + b.pageSize + "-byte pages in the stream but "
                + r.pageSize() + "-byte pages on this machine");
      }
      if (r.usedLength() != b.size) {
        throw new IllegalArgumentException(
            "RAM block '" + b.name() + "' is " + b.size + " bytes in the stream but " + r.usedLength()
                + " bytes on this machine");
      }
    }
  }

  SaveStateEntry entry() {
    return VMStateEntry.of("ferry-ram-layout", 0, VMSTATE, this);
  }

  /**
   * The entry of a machine type that does not send the section (QEMU's pattern for a section
   * newer than a machine type: its {@code needed} is false there): never saved, but loaded and
   * checked when a stream carries it.
   */
  SaveStateEntry loadOnlyEntry() {
    return new ForwardingSaveStateEntry(entry()) {
      @Override
      public boolean needed() {
        return false;
      }
    };
  }
}
