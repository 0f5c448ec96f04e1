package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Attacks the "never touched, so it reads as zeros" shortcut on purpose (issue 8, the lost pages):
 * fresh pages are first touched at a chosen moment between the saver's (or loader's) pagemap read
 * and the record for them, with a dirty sync in the gap. Deterministic: the schedule is fixed by a
 * seed ({@code -Dferry.seed=}), not by a race.
 */
class UntouchedPageShortcutTest {
  private static final long MIB = 1 << 20;
  private static final int PAGE = 4096;
  private static final long SEED = Long.getLong("ferry.seed", 0x8L);

  private static boolean pagemapWorks(RamBlock b) {
    try (PageMap m = PageMap.open()) {
      return m != null && b.isLazilyCommitted() && m.untouched(b.memory().address());
    }
  }

  /**
   * The saver reads pagemap when its cursor enters a fresh region; the guest then first-touches
   * pages ahead of the cursor; a dirty sync consumes their marks (their bits are still set from
   * the first pass); then the cursor reaches them. They must go out with their data.
   */
  @Test
  void pagesFirstTouchedAfterThePagemapReadAndSyncedBeforeTheSendArriveWithTheirData() throws IOException {
    Random rnd = new Random(SEED);
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 32 * MIB)));
        GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", 32 * MIB)));
        GuestMemory guest = src.openMemory()) {
      RamBlock block = src.blocks().get(0);
      assumeThat(pagemapWorks(block)).as("pagemap readable here").isTrue();
      // some old data the guest wrote before the migration, beyond the region attacked below (a
      // touch commits a whole transparent huge page, which pagemap then reports as touched)
      for (int i = 0; i < 16; i++) {
        guest.fillPage(0, PageMap.WINDOW_PAGES + rnd.nextInt(PageMap.WINDOW_PAGES), (byte) (1 + rnd.nextInt(255)));
      }
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
      LiveSave saver = new RamLiveState(src).openSave(SaveOptions.NONE);
      int chunks = 0;
      saver.setup(out);
      chunks++;
      // one short iteration: the saver looks at its first pages, reading pagemap for the region
      saver.iterate(out, () -> true);
      chunks++;
      // the guest first-touches fresh pages ahead of the cursor, inside the region just read
      TreeSet<Long> touched = new TreeSet<>();
      for (int i = 0; i < 64; i++) {
        long page = 1024 + rnd.nextInt(PageMap.WINDOW_PAGES - 1024);
        touched.add(page);
        guest.putLong(0, page * PAGE + 8L * rnd.nextInt(PAGE / 8), rnd.nextLong() | 1);
      }
      // a dirty sync between the touch and the send (the migration thread's pending_exact)
      saver.pendingExactBytes();
      while (!saver.iterate(out, () -> false)) {
        chunks++;
      }
      chunks++;
      saver.complete(out); // guest stopped: nothing more to sync
      chunks++;
      saver.close();
      out.flush();

      RamLoader loader =
          new RamLoader(RamBlockResolver.of(dst.blocks()), RamLoadOptions.defaults().withBlocksStartZeroed(true));
      MigrationInput in = MigrationInput.of(bytes.toByteArray());
      for (int i = 0; i < chunks; i++) {
        loader.loadChunk(in);
      }
      assertSame(src.blocks().get(0), dst.blocks().get(0), "seed " + SEED + ", touched pages " + touched);
    }
  }

  /**
   * A loader into RAM that may hold data (a used machine) skips a zero record for a page pagemap
   * calls untouched. A page this load wrote after that pagemap read is not untouched any more: a
   * later zero record for it (the guest cleared it) must clear it.
   */
  @Test
  void zeroRecordForAPageThisLoadWroteAfterThePagemapReadClearsIt() throws IOException {
    Random rnd = new Random(SEED);
    try (RamBlock src = RamBlock.allocate("ram", 32 * MIB); RamBlock dst = RamBlock.allocate("ram", 32 * MIB)) {
      assumeThat(pagemapWorks(dst)).as("pagemap readable here").isTrue();
      TreeSet<Long> pages = new TreeSet<>();
      while (pages.size() < 32) {
        pages.add(1L + rnd.nextInt(PageMap.WINDOW_PAGES - 1));
      }
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
      RamRecordWriter w = new RamRecordWriter(out);
      w.writeBlockList(List.of(src), false);
      w.writeZeroPage(src, 0); // the loader reads pagemap for the region here
      for (long p : pages) {
        src.memory().set(ValueLayout.JAVA_LONG, p * PAGE + 8L * rnd.nextInt(PAGE / 8), rnd.nextLong() | 1);
        w.writePageCopy(src, p * PAGE, src.targetPage(p * PAGE)); // round 1: data
      }
      w.writeEos();
      for (long p : pages) {
        src.targetPage(p * PAGE).fill((byte) 0);
        w.writeZeroPage(src, p * PAGE); // round 2: the guest cleared them
      }
      w.writeEos();
      out.flush();
      RamLoader loader =
          new RamLoader(RamBlockResolver.of(List.of(dst)), RamLoadOptions.defaults().withBlocksStartZeroed(false));
      MigrationInput in = MigrationInput.of(bytes.toByteArray());
      loader.loadChunk(in);
      loader.loadChunk(in);
      assertSame(src, dst, "seed " + SEED + ", pages " + pages);
    }
  }

  /**
   * The xbzrle cache-hit shortcut sends nothing when a page equals its cached copy. A page that
   * went out as a zero page meanwhile must not be matched against its older cached content: the
   * destination holds zeros, not that content.
   */
  @Test
  void aPageBackToItsCachedContentAfterGoingOutAsZerosIsSentAgain() throws IOException {
    Random rnd = new Random(SEED);
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", MIB)));
        GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", MIB)));
        GuestMemory guest = src.openMemory()) {
      long page = 1 + rnd.nextInt(255);
      byte[] content = new byte[PAGE];
      rnd.nextBytes(content);
      guest.writePage(0, page, content);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
      int chunks = 0;
      try (LiveSave saver =
          new RamLiveState(src).openSave(SaveOptions.of(new RamSaveOptions(RamSaveListener.NONE, true, 64 * PAGE)))) {
        saver.setup(out);
        saver.iterate(out, () -> false); // first pass: the page goes out and into the cache
        guest.fillPage(0, page, (byte) 0);
        saver.pendingExactBytes();
        saver.iterate(out, () -> false); // it goes out as a zero page
        guest.writePage(0, page, content); // and comes back to the cached content
        saver.pendingExactBytes();
        saver.iterate(out, () -> false);
        saver.complete(out);
        chunks = 5;
      }
      out.flush();
      RamLoader loader =
          new RamLoader(RamBlockResolver.of(dst.blocks()), RamLoadOptions.defaults().withBlocksStartZeroed(true));
      MigrationInput in = MigrationInput.of(bytes.toByteArray());
      for (int i = 0; i < chunks; i++) {
        loader.loadChunk(in);
      }
      assertSame(src.blocks().get(0), dst.blocks().get(0), "seed " + SEED + ", page " + page);
    }
  }

  static void assertSame(RamBlock a, RamBlock b, String context) {
    long at = a.memory().mismatch(b.memory());
    if (at >= 0) {
      long differing = 0;
      for (long off = 0; off < a.usedLength(); off += PAGE) {
        if (a.targetPage(off).mismatch(b.targetPage(off)) >= 0) {
          differing++;
        }
      }
      throw new AssertionError(
          String.format(
              "block '%s' differs first at page 0x%x, %d pages differ (%s)", a.name(), at & -PAGE, differing, context));
    }
  }
}
