package dev.ferry.ram;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.RamFlag;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Loads RAM records (the body of a START/PART/END {@code ram} section, or a bare postcopy-preempt
 * channel) into RAM blocks, one record sequence up to its EOS per {@link #loadChunk} call.
 *
 * <pre>
 *  be64 offset|flags, then by kind:
 *   MEM_SIZE       (offset = total) { u8 n, name, be64 length, [be64 page size] }* until the sum is reached
 *   ZERO           [u8 n, name] u8 fill
 *   PAGE           [u8 n, name] 4096 bytes
 *   XBZRLE         [u8 n, name] u8 1, be16 len, len bytes delta
 *   COMPRESS_PAGE  [u8 n, name] be32 len, len bytes zlib
 *   EOS            end of chunk
 *  the name is left out when CONTINUE (0x20) is set: same block as the previous page record
 * </pre>
 *
 * <p>One loader per channel: it remembers the last block named on it (the CONTINUE state), so a
 * postcopy-preempt channel gets its own loader over the same {@link RamBlockResolver}.
 *
 * <p>Validation is stricter than QEMU's: a single known record kind (plus CONTINUE), CONTINUE only
 * after a name, offsets inside the block, a block list that sums exactly to its total, XBZRLE
 * deltas within the page and input, zlib pages that inflate to exactly one page. Every failure is
 * a {@link MigrationStreamException} naming the record kind, block, offset in the block and the
 * stream offset of the record; nothing is allocated from a wire length before it is checked.
 */
public final class RamLoader {
  static final int TPS = StreamHeader.TARGET_PAGE_SIZE;
  /** zlib's compressBound(4096): the longest COMPRESS_PAGE payload QEMU accepts. */
  static final int MAX_COMPRESSED_LENGTH = TPS + (TPS >> 12) + (TPS >> 14) + (TPS >> 25) + 13;

  private static final int KIND_MASK = ~RamFlag.CONTINUE.code() & (TPS - 1);

  private final RamBlockResolver resolver;
  private final RamLoadOptions options;
  private final RamLoadStats stats = new RamLoadStats();
  private final byte[] scratch = new byte[MAX_COMPRESSED_LENGTH];
  private final byte[] inflated = new byte[TPS];
  private RamBlock lastBlock;
  private boolean postcopy;
  private Inflater inflater;

  /** Finds never-touched pages without faulting them in (null where pagemap is unavailable). */
  private final PageMap pageMap = PageMap.open();

  /**
   * Pages this load wrote, per block. Both zero-record shortcuts below hold only for pages this
   * load did not write: fresh RAM is zero and pagemap's "untouched" is true only until the load
   * itself writes the page (pagemap is read a window at a time, so its answer may predate that).
   */
  private final java.util.IdentityHashMap<RamBlock, DirtyBitmap> written = new java.util.IdentityHashMap<>();

  private DirtyBitmap written(RamBlock b) {
    return written.computeIfAbsent(b, DirtyBitmap::forBlock);
  }

  private void markWritten(RamBlock b, long offset) {
    written(b).set(offset / StreamHeader.TARGET_PAGE_SIZE);
  }

  private boolean untouched(RamBlock b, long offset) {
    return pageMap != null && b.isLazilyCommitted() && pageMap.untouched(b.memory().address() + offset);
  }

  public RamLoader(RamBlockResolver resolver, RamLoadOptions options) {
    this.resolver = Objects.requireNonNull(resolver, "resolver");
    this.options = Objects.requireNonNull(options, "options");
  }

  public RamLoadStats stats() {
    return stats;
  }

  /** The block the last page record resolved (the CONTINUE target), or null. */
  public RamBlock lastBlock() {
    return lastBlock;
  }

  /** Releases the pagemap reader. */
  public void close() {
    if (pageMap != null) {
      pageMap.close();
    }
  }

  /** From now on the destination runs postcopy: XBZRLE and MEM_SIZE records are refused. */
  public void enterPostcopy() {
    postcopy = true;
  }

  /** Reads records until (and including) the next EOS. */
  public void loadChunk(MigrationInput in) throws IOException {
    while (true) {
      long recordPos = in.position();
      long word = in.readBe64();
      int flags = (int) (word & (TPS - 1));
      long offset = word & ~(long) (TPS - 1);
      int kind = flags & KIND_MASK;
      if (kind == RamFlag.EOS.code()) {
        stats.chunks++;
        return;
      } else if (kind == RamFlag.MEM_SIZE.code()) {
        if (postcopy) {
          throw fail(in, "RAM block list (MEM_SIZE) during postcopy", recordPos);
        }
        loadBlockList(in, offset, recordPos);
      } else if (kind == RamFlag.ZERO.code()) {
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        int fill = in.readU8();
        MemorySegment page = b.targetPage(offset);
        DirtyBitmap w = written(b);
        long p = offset / StreamHeader.TARGET_PAGE_SIZE;
        if (fill != 0 || w.get(p)) {
          page.fill((byte) fill);
          w.set(p);
        } else if (options.blocksStartZeroed()) {
          // Shortcut: skipped unread. Safe because the RAM was all zeros when the load began
          // (the machine never ran, nothing was loaded; preallocation keeps content), this load
          // did not write the page, and nothing else writes RAM during a precopy load (a postcopy
          // destination's vCPUs write only pages that arrived, and an arrived page gets no
          // further record unless the source discarded it first, which zeroes it here too).
        } else if (!untouched(b, offset) && !RamRecordWriter.isZero(page)) {
          // Otherwise a zero page that pagemap calls untouched (and that this load did not write,
          // see above) or that reads as zeros is left alone, so lazily mapped RAM stays unmapped.
          page.fill((byte) 0);
        }
        stats.block(b.name()).zeroPages++;
      } else if (kind == RamFlag.PAGE.code()) {
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        markWritten(b, offset);
        in.readFully(b.targetPage(offset));
        stats.block(b.name()).normalPages++;
      } else if (kind == RamFlag.XBZRLE.code()) {
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        markWritten(b, offset);
        loadXbzrle(in, b, flags, offset, recordPos);
        stats.block(b.name()).xbzrlePages++;
      } else if (kind == RamFlag.COMPRESS_PAGE.code()) {
        if (!options.compressEnabled()) {
          throw fail(in, "compressed RAM page, but the compress capability is off", recordPos);
        }
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        markWritten(b, offset);
        loadCompressed(in, b, flags, offset, recordPos);
        stats.block(b.name()).compressedPages++;
      } else {
        throw fail(
            in,
            String.format("invalid RAM record flags 0x%x (%s)", flags, RamFlag.describe(flags)),
            recordPos);
      }
    }
  }

  private void loadBlockList(MigrationInput in, long total, long recordPos) throws IOException {
    if (total > options.maxTotalBytes()) {
      throw fail(
          in,
          String.format("RAM block list total 0x%x bytes exceeds the limit 0x%x", total, options.maxTotalBytes()),
          recordPos);
    }
    long remaining = total;
    List<RamBlock> list = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    while (remaining > 0) {
      long entryPos = in.position();
      String name = in.readCountedString();
      long length = in.readBe64();
      if (name.isEmpty()) {
        throw fail(in, "RAM block list entry with an empty name", entryPos);
      }
      if (!seen.add(name)) {
        throw fail(in, "RAM block list names block '" + name + "' twice", entryPos);
      }
      if (length <= 0 || length % TPS != 0) {
        throw fail(
            in, String.format("RAM block '%s' length 0x%x is not a positive multiple of 4096", name, length), entryPos);
      }
      if (length > remaining) {
        throw fail(
            in,
            String.format(
                "RAM block '%s' length 0x%x exceeds what is left of the list total (0x%x of 0x%x)",
                name, length, remaining, total),
            entryPos);
      }
      RamBlock b;
      try {
        b = resolver.declare(name, length, entryPos);
      } catch (MigrationStreamException e) {
        e.atOffset(entryPos);
        in.fail(e);
        throw e;
      }
      if (options.postcopyAdvised() && b.pageSize() != TPS) {
        long pageSize = in.readBe64();
        if (pageSize != b.pageSize()) {
          throw fail(
              in,
              String.format(
                  "RAM block '%s' page size mismatch: stream 0x%x, local 0x%x", name, pageSize, b.pageSize()),
              entryPos);
        }
      }
      list.add(b);
      remaining -= length;
    }
    try {
      resolver.onBlockList(list);
    } catch (MigrationStreamException e) {
      e.atOffset(recordPos);
      in.fail(e);
      throw e;
    }
    stats.blockLists++;
  }

  private RamBlock pageBlock(MigrationInput in, int flags, long offset, long recordPos) throws IOException {
    RamBlock b;
    if ((flags & RamFlag.CONTINUE.code()) != 0) {
      b = lastBlock;
      if (b == null) {
        throw fail(
            in,
            String.format(
                "RAM record %s at offset 0x%x uses CONTINUE before any block was named",
                RamFlag.describe(flags), offset),
            recordPos);
      }
    } else {
      String name = in.readCountedString();
      b = resolver.resolve(name);
      if (b == null) {
        throw fail(
            in,
            String.format("RAM record %s names unknown block '%s' (offset 0x%x)", RamFlag.describe(flags), name, offset),
            recordPos);
      }
      lastBlock = b;
    }
    if (offset >= b.usedLength()) {
      throw fail(
          in,
          String.format(
              "RAM record %s: offset 0x%x is beyond block '%s' (length 0x%x)",
              RamFlag.describe(flags), offset, b.name(), b.usedLength()),
          recordPos);
    }
    return b;
  }

  private void loadXbzrle(MigrationInput in, RamBlock b, int flags, long offset, long recordPos)
      throws IOException {
    if (postcopy) {
      throw fail(in, where("XBZRLE page during postcopy", b, flags, offset), recordPos);
    }
    int encoding = in.readU8();
    if (encoding != 1) {
      throw fail(in, where(String.format("XBZRLE page with encoding byte 0x%02x (want 0x01)", encoding), b, flags, offset), recordPos);
    }
    int len = in.readBe16();
    if (len > TPS) {
      throw fail(in, where("XBZRLE delta of " + len + " bytes exceeds the page size", b, flags, offset), recordPos);
    }
    in.readFully(scratch, 0, len);
    if (Xbzrle.decode(scratch, len, b.targetPage(offset)) < 0) {
      throw fail(in, where("XBZRLE decode error (" + len + "-byte delta)", b, flags, offset), recordPos);
    }
  }

  private void loadCompressed(MigrationInput in, RamBlock b, int flags, long offset, long recordPos)
      throws IOException {
    long clen = in.readBe32Unsigned();
    if (clen > MAX_COMPRESSED_LENGTH) {
      throw fail(
          in, where("compressed page of " + clen + " bytes exceeds " + MAX_COMPRESSED_LENGTH, b, flags, offset), recordPos);
    }
    in.readFully(scratch, 0, (int) clen);
    if (inflater == null) {
      inflater = new Inflater();
    }
    inflater.reset();
    inflater.setInput(scratch, 0, (int) clen);
    try {
      int n = 0;
      while (n < TPS) {
        int r = inflater.inflate(inflated, n, TPS - n);
        if (r == 0) {
          break; // finished early, needs more input, or needs a dictionary: all wrong here
        }
        n += r;
      }
      byte[] one = new byte[1];
      if (n != TPS || !inflater.finished() && inflater.inflate(one) > 0) {
        throw fail(in, where("compressed page does not inflate to exactly one page", b, flags, offset), recordPos);
      }
    } catch (DataFormatException e) {
      throw fail(in, where("compressed page is not valid zlib: " + e.getMessage(), b, flags, offset), recordPos);
    }
    MemorySegment.copy(MemorySegment.ofArray(inflated), 0, b.targetPage(offset), 0, TPS);
  }

  private static String where(String what, RamBlock b, int flags, long offset) {
    return String.format("%s (RAM record %s, block '%s', offset 0x%x)", what, RamFlag.describe(flags), b.name(), offset);
  }

  private static MigrationStreamException fail(MigrationInput in, String what, long recordPos) {
    MigrationStreamException e = new MigrationStreamException(what, recordPos);
    in.fail(e);
    return e;
  }
}
