package dev.ferry.ram;

import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.RamFlag;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;

/**
 * Writes RAM records, the mirror of {@link RamLoader}: the block list, zero pages, whole pages
 * (queued by reference, not copied), XBZRLE deltas and EOS. It remembers the last block it named
 * (per channel, so one writer per channel) and sets CONTINUE instead of repeating the name.
 */
public final class RamRecordWriter {
  static final int TPS = StreamHeader.TARGET_PAGE_SIZE;
  /** A page of zeros to compare against (never written). */
  private static final MemorySegment ZERO_PAGE = Arena.global().allocate(TPS, TPS);

  private final MigrationOutput out;
  private RamBlock lastBlock;

  public RamRecordWriter(MigrationOutput out) {
    this.out = Objects.requireNonNull(out, "out");
  }

  public MigrationOutput output() {
    return out;
  }

  /**
   * Forgets the last named block, so the next page record carries its name again (new migration,
   * changed block list, postcopy discard phase, other channel).
   */
  public void forgetLastBlock() {
    lastBlock = null;
  }

  /**
   * The MEM_SIZE record: total, then each block's name and length, plus its page size when {@code
   * postcopyRam} is on and the block's page size is not 4 KiB. Also forgets the last block.
   */
  public void writeBlockList(List<RamBlock> blocks, boolean postcopyRam) throws IOException {
    writeBlockList(blocks, postcopyRam, null);
  }

  /** What follows a block's block-list entry (the mapped-ram header). */
  @FunctionalInterface
  interface EntryTail {
    void write(RamBlock block) throws IOException;
  }

  /** The block list with {@code tail} (or nothing, when null) after each entry. */
  void writeBlockList(List<RamBlock> blocks, boolean postcopyRam, EntryTail tail) throws IOException {
    long total = 0;
    for (RamBlock b : blocks) {
      total += b.usedLength();
    }
    out.writeBe64(total | RamFlag.MEM_SIZE.code());
    for (RamBlock b : blocks) {
      out.writeCountedString(b.name());
      out.writeBe64(b.usedLength());
      if (postcopyRam && b.pageSize() != TPS) {
        out.writeBe64(b.pageSize());
      }
      if (tail != null) {
        tail.write(b);
      }
    }
    forgetLastBlock();
  }

  /** A ZERO record (fill byte 0) for the page at {@code offset}. */
  public void writeZeroPage(RamBlock block, long offset) throws IOException {
    header(block, offset, RamFlag.ZERO.code());
    out.writeU8(0);
  }

  /**
   * A PAGE record; the page's bytes are queued by reference and read when the output flushes (the
   * caller's dirty tracking sends the page again if it changes before that).
   */
  public void writePage(RamBlock block, long offset) throws IOException {
    header(block, offset, RamFlag.PAGE.code());
    out.writePage(block.memory(), offset, TPS); // a reused view of the block, no slice per page
  }

  /**
   * A PAGE record for {@code offset} of {@code block} whose content is {@code content} (4 KiB),
   * queued by reference: it must stay unchanged until the output is flushed (an XBZRLE cache slot).
   */
  public void writePage(RamBlock block, long offset, MemorySegment content) throws IOException {
    header(block, offset, RamFlag.PAGE.code());
    out.writePage(content);
  }

  /** A PAGE record whose content is copied into the stream now (a scratch buffer's). */
  public void writePageCopy(RamBlock block, long offset, MemorySegment content) throws IOException {
    header(block, offset, RamFlag.PAGE.code());
    out.writeBytes(content, 0, TPS);
  }

  /** An XBZRLE record carrying {@code delta[0..len)} (from {@link Xbzrle#encode}, 1..4096 bytes). */
  public void writeXbzrlePage(RamBlock block, long offset, byte[] delta, int len) throws IOException {
    if (len <= 0 || len > TPS) {
      throw new IllegalArgumentException("XBZRLE delta length must be 1.." + TPS + ": " + len);
    }
    header(block, offset, RamFlag.XBZRLE.code());
    out.writeU8(1);
    out.writeBe16(len);
    out.writeBytes(delta, 0, len);
  }

  /** The EOS record that ends a chunk. */
  public void writeEos() throws IOException {
    out.writeBe64(RamFlag.EOS.code());
  }

  private void header(RamBlock block, long offset, int kind) throws IOException {
    if (offset < 0 || (offset & (TPS - 1)) != 0 || offset >= block.usedLength()) {
      throw new IllegalArgumentException("bad page offset 0x" + Long.toHexString(offset) + " in " + block);
    }
    if (block == lastBlock) {
      out.writeBe64(offset | kind | RamFlag.CONTINUE.code());
    } else {
      out.writeBe64(offset | kind);
      out.writeCountedString(block.name());
      lastBlock = block;
    }
  }

  /**
   * True when every byte of {@code page} is zero. Compares 4 KiB at a time against a zero page with
   * {@link MemorySegment#mismatch}. StreamDecodeBench measured it level with a loop over longs
   * (about 0.25-0.3 us per zero 4 KiB page on a busy 2-core machine; the difference was within
   * noise); mismatch is kept as the simpler code.
   */
  public static boolean isZero(MemorySegment page) {
    long to = page.byteSize();
    for (long pos = 0; pos < to; pos += TPS) {
      long n = Math.min(TPS, to - pos);
      if (MemorySegment.mismatch(page, pos, pos + n, ZERO_PAGE, 0, n) >= 0) {
        return false;
      }
    }
    return true;
  }

  /**
   * True when the target page at {@code offset} of {@code region} reads as zeros (no slice made).
   * A first-qword pre-check was measured (StreamDecodeBench isZeroPageDense: 2.5 against 3.1 ns per
   * dense page, within noise) and left out: mismatch leaves at the first differing qword already, and
   * the time the migration thread's profile shows here is the first touch of the page in memory,
   * which the gathering write would pay otherwise.
   */
  public static boolean isZeroPage(MemorySegment region, long offset) {
    return MemorySegment.mismatch(region, offset, offset + TPS, ZERO_PAGE, 0, TPS) < 0;
  }

}
