package dev.ferry.ram;

import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The source side of {@code mapped-ram} (layout: {@link MappedRamLayout}): reserves each block's
 * bitmap and page region while the block list is written, writes every page sent at its fixed
 * offset with a positional write, and writes the bitmaps of pages present at completion.
 *
 * <p>Pages next to each other in a block go out as one write (up to 1 MiB): guest RAM is one
 * segment per block, so a run of consecutive dirty, non-zero pages is one slice of it. A run is
 * written before the iteration that collected it ends ({@link #flush}), so before the next dirty
 * sync: a guest write after the zero test is marked in the dirty log and the page goes again.
 *
 * <p>Not thread-safe: the migration thread's.
 */
final class MappedRamWriter {
  private static final int TPS = StreamHeader.TARGET_PAGE_SIZE;
  private static final int MAX_RUN_PAGES = MappedRamLayout.MAX_IO_BYTES / TPS;

  private final MigrationOutput out;
  private final List<RamBlock> blocks;
  private final MappedRamLayout.Header[] headers;
  /** Per block: bit set = the page's slot holds its latest non-zero content. */
  private final DirtyBitmap[] present;
  private int runBlock = -1;
  private long runStart;
  private int runPages;
  private boolean finished;

  /**
   * @throws IOException when the output is not a file (QEMU: "Migration requires seekable
   *     transport (e.g. file)")
   */
  MappedRamWriter(MigrationOutput out, List<RamBlock> blocks) throws IOException {
    if (!out.seekable()) {
      throw new IOException("Migration requires seekable transport (e.g. file): the mapped-ram capability is on");
    }
    this.out = out;
    this.blocks = blocks;
    this.headers = new MappedRamLayout.Header[blocks.size()];
    this.present = new DirtyBitmap[blocks.size()];
    for (int i = 0; i < blocks.size(); i++) {
      present[i] = DirtyBitmap.forBlock(blocks.get(i)); // its words are the file's bitmap words
    }
  }

  /**
   * After block {@code b}'s block-list entry: its header, then the stream moves past the bitmap and
   * the pages (QEMU's mapped_ram_setup_ramblock).
   */
  void writeHeader(RamBlock b) throws IOException {
    int i = blocks.indexOf(b);
    MappedRamLayout.Header h = MappedRamLayout.headerAt(out.streamOffset(), b.usedLength());
    headers[i] = h;
    out.writeBytes(h.encode());
    out.seek(h.pagesOffset() + b.usedLength());
  }

  /** Page {@code page} of block {@code blockIndex} is non-zero: its slot gets the current content. */
  void page(int blockIndex, long page) throws IOException {
    present[blockIndex].set(page);
    if (runPages > 0 && blockIndex == runBlock && page == runStart + runPages && runPages < MAX_RUN_PAGES) {
      runPages++;
      return;
    }
    flush();
    runBlock = blockIndex;
    runStart = page;
    runPages = 1;
  }

  /** Page {@code page} is zero: not written, its bit cleared (a stale slot is then ignored). */
  void zeroPage(int blockIndex, long page) {
    present[blockIndex].clear(page);
  }

  /** Writes the pending run of pages. */
  void flush() throws IOException {
    if (runPages == 0) {
      return;
    }
    RamBlock b = blocks.get(runBlock);
    long offset = runStart * TPS;
    long bytes = (long) runPages * TPS;
    runPages = 0;
    out.writeAt(b.memory().asSlice(offset, bytes).asByteBuffer(), headers[runBlock].pagesOffset() + offset);
  }

  /** Completion: the last run, then every block's bitmap at its offset (QEMU's ram_save_file_bmap). */
  void finish() throws IOException {
    flush();
    if (finished) {
      return;
    }
    finished = true;
    for (int i = 0; i < blocks.size(); i++) {
      long[] words = present[i].words();
      ByteBuffer bm = ByteBuffer.allocate(words.length * 8).order(ByteOrder.LITTLE_ENDIAN);
      bm.asLongBuffer().put(words);
      out.writeAt(bm, headers[i].bitmapOffset());
    }
  }
}
