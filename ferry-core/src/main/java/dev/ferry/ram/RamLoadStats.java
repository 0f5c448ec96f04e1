package dev.ferry.ram;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Counts of what a {@link RamLoader} has loaded: page records per kind and block, chunks, lists. */
public final class RamLoadStats {
  /** Page records of one block, by kind. */
  public static final class BlockCounts {
    long zeroPages;
    long normalPages;
    long xbzrlePages;
    long compressedPages;

    public long zeroPages() {
      return zeroPages;
    }

    public long normalPages() {
      return normalPages;
    }

    public long xbzrlePages() {
      return xbzrlePages;
    }

    public long compressedPages() {
      return compressedPages;
    }

    public long totalPages() {
      return zeroPages + normalPages + xbzrlePages + compressedPages;
    }

    @Override
    public String toString() {
      return "zero=" + zeroPages + " normal=" + normalPages + " xbzrle=" + xbzrlePages + " compressed=" + compressedPages;
    }
  }

  private final Map<String, BlockCounts> blocks = new LinkedHashMap<>();
  long chunks;
  long blockLists;

  private String lastName;
  private BlockCounts last;

  /** Called per page: the last block's counters are kept at hand (pages come block by block). */
  BlockCounts block(String name) {
    if (name != lastName) {
      last = blocks.computeIfAbsent(name, n -> new BlockCounts());
      lastName = name;
    }
    return last;
  }

  /** Per block name, in the order blocks were first seen. */
  public Map<String, BlockCounts> blocks() {
    return Collections.unmodifiableMap(blocks);
  }

  /** Chunks (record sequences ended by EOS) loaded. */
  public long chunks() {
    return chunks;
  }

  /** MEM_SIZE block lists loaded. */
  public long blockLists() {
    return blockLists;
  }

  public long zeroPages() {
    return blocks.values().stream().mapToLong(BlockCounts::zeroPages).sum();
  }

  public long normalPages() {
    return blocks.values().stream().mapToLong(BlockCounts::normalPages).sum();
  }

  public long xbzrlePages() {
    return blocks.values().stream().mapToLong(BlockCounts::xbzrlePages).sum();
  }

  public long compressedPages() {
    return blocks.values().stream().mapToLong(BlockCounts::compressedPages).sum();
  }
}
