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
  private MemorySegment discardPage;
  private final byte[] scratch = new byte[MAX_COMPRESSED_LENGTH];
  private final byte[] inflated = new byte[TPS];
  private RamBlock lastBlock;
  private boolean postcopy;
  private Inflater inflater;
  /** The multifd channels' sync at each precopy EOS, or null without multifd. */
  private MultifdSync multifd;

  // postcopy (destination): see advise / refusePages / enterPostcopy
  private boolean advised;
  private ReceivedPages received;
  private PostcopyPlacer placer;
  private String refusePages;
  private RamBlock indexedBlock;
  private int indexedBlockIndex;
  private long postcopyDuplicates;
  /** The host page being assembled (blocks with pages larger than 4 KiB). */
  private byte[] hostPage;
  private RamBlock hostBlock;
  private long hostOffset;
  private int hostFilled;

  /**
   * Told by the postcopy loader after a host page was written and its bits published, so that
   * vCPUs waiting for it run on.
   */
  @FunctionalInterface
  public interface PostcopyPlacer {
    void placed(int blockIndex, long hostOffset, int length);
  }

  /** Finds never-touched pages without faulting them in (null where pagemap is unavailable). */
  private final PageMap pageMap = PageMap.open();

  /**
   * Pages this load wrote, per block. Both zero-record shortcuts below hold only for pages this
   * load did not write: fresh RAM is zero and pagemap's "untouched" is true only until the load
   * itself writes the page (pagemap is read a window at a time, so its answer may predate that).
   */
  private final java.util.IdentityHashMap<RamBlock, DirtyBitmap> written = new java.util.IdentityHashMap<>();

  /** The block of the last {@link #written(RamBlock)} call and its map (pages come block by block). */
  private RamBlock writtenBlock;
  private DirtyBitmap writtenMap;

  private DirtyBitmap written(RamBlock b) {
    if (b != writtenBlock) {
      writtenMap = written.computeIfAbsent(b, DirtyBitmap::forBlock);
      writtenBlock = b;
    }
    return writtenMap;
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

  /** The blocks pages land in (multifd channels resolve their packets' block names here). */
  public RamBlockResolver resolver() {
    return resolver;
  }

  /** The mapped-ram blocks read so far (header, bitmap summary), in block-list order. */
  private final List<MappedRamLayout.BlockInfo> mappedRamBlocks = new ArrayList<>();

  public List<MappedRamLayout.BlockInfo> mappedRamBlocks() {
    return List.copyOf(mappedRamBlocks);
  }

  /** The block the last page record resolved (the CONTINUE target), or null. */
  public RamBlock lastBlock() {
    return lastBlock;
  }

  /** With the {@code multifd} capability: {@code sync} runs at every RAM EOS before postcopy. */
  public void multifd(MultifdSync sync) {
    this.multifd = sync;
  }

  /**
   * A multifd channel placed the normal pages at {@code offsets} of {@code b} (one packet,
   * reported by the main thread at the EOS of its section): counted and marked written (and
   * received, for postcopy) as PAGE records would be.
   */
  public void multifdPagesPlaced(RamBlock b, long[] offsets) {
    DirtyBitmap w = written(b);
    for (long offset : offsets) {
      w.set(offset / StreamHeader.TARGET_PAGE_SIZE);
      published(b, offset);
    }
    stats.block(b.name()).normalPages += offsets.length;
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

  /**
   * POSTCOPY_ADVISE arrived (and postcopy-ram is on here): the block list carries the page sizes
   * of huge-page blocks, and every page loaded from now on is published in {@code received}.
   */
  public void advise(ReceivedPages received) {
    this.advised = true;
    this.received = Objects.requireNonNull(received, "received");
  }

  /**
   * Page records are a protocol error from now on (between the discards and LISTEN: a page there
   * would undo a discard); {@code why} says so in the error. Null allows them again.
   */
  public void refusePages(String why) {
    this.refusePages = why;
  }

  /**
   * Postcopy placement from now on (after LISTEN): a page already received is dropped, any other
   * is written whole (huge pages assembled first), published in the received bitmap given to
   * {@link #advise}, and {@code placer} told, in that order.
   */
  public void enterPostcopy(PostcopyPlacer placer) {
    if (received == null) {
      throw new IllegalStateException("postcopy without POSTCOPY_ADVISE");
    }
    this.placer = Objects.requireNonNull(placer, "placer");
    this.refusePages = null;
    this.postcopy = true;
  }

  /**
   * Postcopy recovery: the stream continues on a new connection. A huge page half collected from the
   * lost one is thrown away (its bits were never set, so it comes again whole), and the next record
   * must name its block (the source forgets its last block too).
   */
  public void resumePostcopy() {
    hostBlock = null;
    hostFilled = 0;
    lastBlock = null;
  }

  /** Postcopy pages dropped because they had arrived already (a request raced the background). */
  public long postcopyDuplicates() {
    return postcopyDuplicates;
  }

  private int blockIndex(RamBlock b) {
    if (b != indexedBlock) {
      indexedBlockIndex = received.indexOf(b);
      indexedBlock = b;
    }
    return indexedBlockIndex;
  }

  private void published(RamBlock b, long offset) {
    if (received != null) {
      received.markReceived(blockIndex(b), offset / TPS, 1);
    }
  }

  /** A ZERO or PAGE record in postcopy mode (after its block was resolved). */
  private void postcopyPage(MigrationInput in, int kind, int flags, RamBlock b, long offset, long recordPos)
      throws IOException {
    int bi = blockIndex(b);
    if (bi < 0) {
      throw fail(in, where("postcopy page of a block the received map does not know", b, flags, offset), recordPos);
    }
    boolean zero = kind == RamFlag.ZERO.code();
    if (b.pageSize() == TPS) {
      if (received.isReceived(bi, offset / TPS)) {
        skipPayload(in, zero);
        postcopyDuplicates++;
        return;
      }
      boolean store = !options.pageDataDiscarded();
      if (zero) {
        int fill = in.readU8();
        if (store && (fill != 0 || !(untouched(b, offset) || RamRecordWriter.isZeroPage(b.memory(), offset)))) {
          b.targetPage(offset).fill((byte) fill);
        }
        stats.block(b.name()).zeroPages++;
      } else {
        if (store) {
          in.readFully(b.memory(), offset, TPS);
        } else {
          in.skip(TPS);
        }
        stats.block(b.name()).normalPages++;
      }
      received.markReceived(bi, offset / TPS, 1);
      placer.placed(bi, offset, TPS);
      return;
    }
    // a huge page: its target pages come back to back; place it only whole (QEMU's temp page)
    int ps = b.pageSize();
    long host = offset & -(long) ps;
    if (hostBlock == null) {
      if (offset != host) {
        throw fail(
            in,
            where(String.format("postcopy page does not start its %d KiB host page 0x%x", ps >> 10, host), b, flags, offset),
            recordPos);
      }
      if (hostPage == null || hostPage.length < ps) {
        hostPage = new byte[ps];
      }
      hostBlock = b;
      hostOffset = host;
      hostFilled = 0;
    } else if (hostBlock != b || offset != hostOffset + (long) hostFilled * TPS) {
      throw fail(
          in,
          where(
              String.format(
                  "Non-same host page detected: expected offset 0x%x of block '%s' next", hostOffset + (long) hostFilled * TPS,
                  hostBlock.name()),
              b, flags, offset),
          recordPos);
    }
    int at = hostFilled * TPS;
    if (zero) {
      int fill = in.readU8();
      java.util.Arrays.fill(hostPage, at, at + TPS, (byte) fill);
      stats.block(b.name()).zeroPages++;
    } else {
      in.readFully(hostPage, at, TPS);
      stats.block(b.name()).normalPages++;
    }
    hostFilled++;
    if ((long) hostFilled * TPS == ps) {
      hostBlock = null;
      if (received.isReceived(bi, host / TPS)) {
        postcopyDuplicates++;
        return;
      }
      if (!options.pageDataDiscarded()) {
        MemorySegment.copy(MemorySegment.ofArray(hostPage), 0, b.memory(), host, ps);
      }
      received.markReceived(bi, host / TPS, ps / TPS);
      placer.placed(bi, host, ps);
    }
  }

  private void skipPayload(MigrationInput in, boolean zero) throws IOException {
    if (zero) {
      in.readU8();
    } else {
      in.readFully(scratch, 0, TPS);
    }
  }

  private void checkPagesAllowed(MigrationInput in, int flags, long offset, long recordPos) throws IOException {
    if (options.mappedRam()) {
      throw fail(
          in, String.format("RAM record %s at offset 0x%x in a mapped-ram stream (pages are in the file's page regions)",
              RamFlag.describe(flags), offset), recordPos);
    }
    if (refusePages != null) {
      throw fail(
          in, String.format("RAM record %s at offset 0x%x: %s", RamFlag.describe(flags), offset, refusePages), recordPos);
    }
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
        if (multifd != null && !postcopy) {
          multifd.syncAtEos(this);
        }
        return;
      } else if (kind == RamFlag.MEM_SIZE.code()) {
        if (postcopy) {
          throw fail(in, "RAM block list (MEM_SIZE) during postcopy", recordPos);
        }
        loadBlockList(in, offset, recordPos);
      } else if (kind == RamFlag.ZERO.code()) {
        checkPagesAllowed(in, flags, offset, recordPos);
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        if (placer != null) {
          postcopyPage(in, kind, flags, b, offset, recordPos);
          continue;
        }
        int fill = in.readU8();
        if (options.pageDataDiscarded()) {
          stats.block(b.name()).zeroPages++;
          published(b, offset);
          continue;
        }
        DirtyBitmap w = written(b);
        long p = offset / StreamHeader.TARGET_PAGE_SIZE;
        if (fill != 0 || w.get(p)) {
          b.targetPage(offset).fill((byte) fill);
          w.set(p);
        } else if (options.blocksStartZeroed()) {
          // Shortcut: skipped unread. Safe because the RAM was all zeros when the load began
          // (the machine never ran, nothing was loaded; preallocation keeps content), this load
          // did not write the page, and nothing else writes RAM during a precopy load (a postcopy
          // destination's vCPUs write only pages that arrived, and an arrived page gets no
          // further record unless the source discarded it first, which zeroes it here too).
        } else if (!untouched(b, offset) && !RamRecordWriter.isZeroPage(b.memory(), offset)) {
          // Otherwise a zero page that pagemap calls untouched (and that this load did not write,
          // see above) or that reads as zeros is left alone, so lazily mapped RAM stays unmapped.
          b.targetPage(offset).fill((byte) 0);
        }
        stats.block(b.name()).zeroPages++;
        published(b, offset);
      } else if (kind == RamFlag.PAGE.code()) {
        checkPagesAllowed(in, flags, offset, recordPos);
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        if (placer != null) {
          postcopyPage(in, kind, flags, b, offset, recordPos);
          continue;
        }
        if (options.pageDataDiscarded()) {
          in.skip(TPS);
        } else {
          markWritten(b, offset);
          in.readFully(b.memory(), offset, TPS); // no slice: straight into RAM when not buffered
        }
        stats.block(b.name()).normalPages++;
        published(b, offset);
      } else if (kind == RamFlag.XBZRLE.code()) {
        checkPagesAllowed(in, flags, offset, recordPos);
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        markWritten(b, offset);
        loadXbzrle(in, b, flags, offset, recordPos);
        stats.block(b.name()).xbzrlePages++;
        published(b, offset);
      } else if (kind == RamFlag.COMPRESS_PAGE.code()) {
        if (!options.compressEnabled()) {
          throw fail(in, "compressed RAM page, but the compress capability is off", recordPos);
        }
        checkPagesAllowed(in, flags, offset, recordPos);
        RamBlock b = pageBlock(in, flags, offset, recordPos);
        if (postcopy) {
          throw fail(in, where("compressed page during postcopy", b, flags, offset), recordPos);
        }
        markWritten(b, offset);
        loadCompressed(in, b, flags, offset, recordPos);
        stats.block(b.name()).compressedPages++;
        published(b, offset);
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
      if ((options.postcopyAdvised() || advised) && b.pageSize() != TPS) {
        long pageSize = in.readBe64();
        if (pageSize != b.pageSize()) {
          throw fail(
              in,
              String.format(
                  "RAM block '%s' page size mismatch: stream 0x%x, local 0x%x", name, pageSize, b.pageSize()),
              entryPos);
        }
      }
      if (options.mappedRam()) {
        // a page absent from the file is zero: cleared only where this RAM may hold data (the
        // shortcuts of the ZERO record below, for the same reasons); a decoder that discards page
        // data (pageDataDiscarded) reads and checks the layout and stores nothing
        boolean store = !options.pageDataDiscarded();
        MappedRamLayout.BlockInfo info = MappedRamReader.load(in, b, length, store,
            !store || options.blocksStartZeroed()
                ? null
                : p -> !untouched(b, p * TPS) && !RamRecordWriter.isZeroPage(b.memory(), p * TPS));
        mappedRamBlocks.add(info);
        stats.block(b.name()).normalPages += info.pagesPresent();
        stats.block(b.name()).zeroPages += length / TPS - info.pagesPresent();
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
    MemorySegment target = options.pageDataDiscarded() ? discardPage() : b.targetPage(offset);
    if (Xbzrle.decode(scratch, len, target) < 0) {
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
    if (!options.pageDataDiscarded()) {
      MemorySegment.copy(MemorySegment.ofArray(inflated), 0, b.targetPage(offset), 0, TPS);
    }
  }

  /** Where an XBZRLE delta is decoded when page data is discarded (its errors are structural). */
  private MemorySegment discardPage() {
    if (discardPage == null) {
      discardPage = MemorySegment.ofArray(new byte[TPS]);
    }
    return discardPage;
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
