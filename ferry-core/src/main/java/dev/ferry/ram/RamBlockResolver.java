package dev.ferry.ram;

import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Where a {@link RamLoader} finds the RAM blocks a stream names. A destination validates the
 * source's block list against its own blocks ({@link #of}); an analyzer creates the blocks as the
 * list announces them ({@link Allocating}).
 */
public interface RamBlockResolver {
  /** The block a page record names, or null when there is none by that name. */
  RamBlock resolve(String name);

  /**
   * One entry of a MEM_SIZE block list: returns the block that pages for {@code name} will land in,
   * or throws when the entry is unacceptable (unknown name, different length). Called in list order,
   * before the entry's optional page-size field is read.
   *
   * @param recordOffset stream offset of the entry, for error messages
   */
  RamBlock declare(String name, long usedLength, long recordOffset) throws MigrationStreamException;

  /** Called once the whole block list of a MEM_SIZE record has been read and accepted. */
  default void onBlockList(List<RamBlock> blocks) throws MigrationStreamException {}

  /**
   * A resolver over a fixed set of blocks (a destination machine): every name in the stream's list
   * must exist here with the same length, and every block here must be in the list.
   */
  static RamBlockResolver of(Collection<RamBlock> blocks) {
    Map<String, RamBlock> byName = new LinkedHashMap<>();
    for (RamBlock b : blocks) {
      if (byName.put(b.name(), b) != null) {
        throw new IllegalArgumentException("duplicate RAM block name '" + b.name() + "'");
      }
    }
    return new RamBlockResolver() {
      @Override
      public RamBlock resolve(String name) {
        return byName.get(name);
      }

      @Override
      public RamBlock declare(String name, long usedLength, long recordOffset)
          throws MigrationStreamException {
        RamBlock b = byName.get(name);
        if (b == null) {
          throw new MigrationStreamException(
              "RAM block list names block '" + name + "', which this machine does not have (local blocks: "
                  + byName.keySet() + ")",
              recordOffset);
        }
        if (b.usedLength() != usedLength) {
          throw new MigrationStreamException(
              String.format(
                  "RAM block '%s' length mismatch: stream 0x%x, local 0x%x", name, usedLength, b.usedLength()),
              recordOffset);
        }
        return b;
      }

      @Override
      public void onBlockList(List<RamBlock> blocks) throws MigrationStreamException {
        for (String name : byName.keySet()) {
          if (blocks.stream().noneMatch(b -> b.name().equals(name))) {
            throw new MigrationStreamException(
                "RAM block '" + name + "' of this machine is missing from the stream's block list (stream blocks: "
                    + blocks.stream().map(RamBlock::name).toList() + ")");
          }
        }
      }
    };
  }

  /**
   * Creates each block when the stream's list announces it (an analyzer, which has no machine).
   * Blocks get 4 KiB pages. A block announced again must keep its length. The total over all blocks
   * is capped by {@code maxTotalBytes}, checked before anything is allocated.
   */
  final class Allocating implements RamBlockResolver, AutoCloseable {
    /** Makes a block the stream announced, after the checks; {@code recordOffset} is for its errors. */
    public interface Factory {
      RamBlock create(String name, long usedLength, long recordOffset) throws IOException;
    }

    private final long maxTotalBytes;
    private final Map<String, RamBlock> blocks = new LinkedHashMap<>();
    private long totalBytes;
    private Factory factory = (name, usedLength, recordOffset) -> RamBlock.allocate(name, usedLength);

    public Allocating(long maxTotalBytes) {
      if (maxTotalBytes <= 0) {
        throw new IllegalArgumentException("maxTotalBytes must be positive: " + maxTotalBytes);
      }
      this.maxTotalBytes = maxTotalBytes;
    }

    /** Blocks from now on come from {@code f} (default: {@link RamBlock#allocate(String, long)}). */
    public void factory(Factory f) {
      this.factory = Objects.requireNonNull(f, "factory");
    }

    @Override
    public RamBlock resolve(String name) {
      return blocks.get(name);
    }

    @Override
    public RamBlock declare(String name, long usedLength, long recordOffset)
        throws MigrationStreamException {
      RamBlock b = blocks.get(name);
      if (b != null) {
        if (b.usedLength() != usedLength) {
          throw new MigrationStreamException(
              String.format(
                  "RAM block '%s' announced again with length 0x%x (was 0x%x)", name, usedLength, b.usedLength()),
              recordOffset);
        }
        return b;
      }
      if (name.isEmpty() || name.length() > RamBlock.MAX_NAME_LENGTH) {
        throw new MigrationStreamException(
            "RAM block name must be 1.." + RamBlock.MAX_NAME_LENGTH + " bytes: '" + name + "'", recordOffset);
      }
      if (usedLength > maxTotalBytes - totalBytes) {
        throw new MigrationStreamException(
            String.format(
                "RAM block '%s' length 0x%x exceeds the cap of 0x%x bytes for all blocks", name, usedLength, maxTotalBytes),
            recordOffset);
      }
      try {
        b = factory.create(name, usedLength, recordOffset);
      } catch (MigrationStreamException e) {
        throw e;
      } catch (IOException e) {
        throw new MigrationStreamException(
            "RAM block '" + name + "': " + (e.getMessage() == null ? e.toString() : e.getMessage()), recordOffset, e);
      }
      blocks.put(name, b);
      totalBytes += usedLength;
      return b;
    }

    /** The blocks created so far, in announcement order. */
    public List<RamBlock> blocks() {
      return new ArrayList<>(blocks.values());
    }

    @Override
    public void close() {
      for (RamBlock b : blocks.values()) {
        b.close();
      }
      blocks.clear();
    }
  }
}
