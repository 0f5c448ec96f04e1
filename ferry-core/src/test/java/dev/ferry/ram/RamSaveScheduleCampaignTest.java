package dev.ferry.ram;

import static dev.ferry.ram.UntouchedPageShortcutTest.assertSame;

import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.ByteArrayOutputStream;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A seeded campaign against every page-skipping shortcut of the RAM saver and loader at once
 * (pagemap's never-touched pages, zero pages, xbzrle cache hits, fresh and used destinations): a
 * random schedule interleaves short iterations, dirty syncs and guest writes of fresh pages, old
 * pages, zeroed pages and restored earlier contents, then completes; the loaded RAM must equal the
 * source byte for byte. Deterministic for a seed: {@code -Dferry.seed=S -Dferry.campaign.runs=N}
 * (a failure prints the seed of its run).
 */
class RamSaveScheduleCampaignTest {
  private static final int PAGE = 4096;
  private static final long SEED = Long.getLong("ferry.seed", 0x5eed8L);
  private static final int RUNS = Integer.getInteger("ferry.campaign.runs", 16);

  @Test
  void randomTouchSchedulesDuringASaveEndExact() throws Exception {
    for (int run = 0; run < RUNS; run++) {
      long seed = SEED + run;
      try {
        oneRun(seed);
      } catch (AssertionError | RuntimeException e) {
        throw new AssertionError(
            "run with seed " + seed + " (again: -Dferry.seed=" + seed + " -Dferry.campaign.runs=1): " + e.getMessage(), e);
      }
    }
  }

  private static void oneRun(long seed) throws Exception {
    Random rnd = new Random(seed);
    long ramBytes = (17L + rnd.nextInt(8)) << 20; // a little more than one pagemap window
    long vramBytes = (1L + rnd.nextInt(2)) << 20;
    boolean xbzrle = rnd.nextBoolean();
    long cacheBytes = (long) PAGE << (4 + rnd.nextInt(5)); // 16..256 pages: slots collide and age
    boolean freshDestination = rnd.nextBoolean();
    List<RamBlock> srcBlocks = List.of(RamBlock.allocate("ram", ramBytes), RamBlock.allocate("vram", vramBytes));
    List<RamBlock> dstBlocks = List.of(RamBlock.allocate("ram", ramBytes), RamBlock.allocate("vram", vramBytes));
    try (GuestRam src = new GuestRam(srcBlocks);
        GuestRam dst = new GuestRam(dstBlocks);
        GuestMemory guest = src.openMemory()) {
      List<long[]> old = new ArrayList<>(); // {block, page}
      for (int i = 0; i < 40; i++) {
        long[] bp = randomPage(rnd, guest);
        guest.putLong((int) bp[0], bp[1] * PAGE + 8L * rnd.nextInt(PAGE / 8), rnd.nextLong());
        old.add(bp);
      }
      if (!freshDestination) {
        for (int i = 0; i < 64; i++) {
          RamBlock b = dstBlocks.get(rnd.nextInt(dstBlocks.size()));
          long page = rnd.nextLong(b.targetPageCount());
          b.targetPage(page * PAGE).fill((byte) (1 + rnd.nextInt(255)));
        }
      }
      // a few hot pages take the zeroing, rewriting and restoring, so that the same page goes
      // through data -> zero -> the same data again across syncs (the xbzrle cache's trap)
      List<long[]> hot = new ArrayList<>(old.subList(0, 2));
      Map<Long, byte[]> patterns = new HashMap<>(); // key block << 40 | page
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
      RamSaveOptions options = new RamSaveOptions(RamSaveListener.NONE, xbzrle, xbzrle ? cacheBytes : 0);
      int chunks = 0;
      try (LiveSave save = new RamLiveState(src).openSave(SaveOptions.of(options))) {
        save.setup(out);
        chunks++;
        if (rnd.nextBoolean()) {
          save.iterate(out, () -> false); // the first pass done early: cache lookups from now on
          chunks++;
        }
        int steps = 40 + rnd.nextInt(80);
        for (int s = 0; s < steps; s++) {
          switch (rnd.nextInt(10)) {
            case 0, 1, 2 -> {
              int budget = rnd.nextInt(5) == 0 ? Integer.MAX_VALUE : rnd.nextInt(8);
              int[] checks = {0};
              save.iterate(out, () -> ++checks[0] > budget);
              chunks++;
            }
            case 3 -> save.pendingExactBytes(); // a dirty sync
            case 4, 5 -> { // first touches clustered in one region, as a sweeping guest makes them
              int block = rnd.nextInt(guest.blockCount());
              long pages = guest.pageCount(block);
              long from = rnd.nextLong(pages);
              for (int n = 1 + rnd.nextInt(32); n > 0; n--) {
                long page = Math.min(pages - 1, from + rnd.nextInt(PageMap.WINDOW_PAGES));
                guest.addByte(block, page * PAGE + rnd.nextInt(PAGE), 1 + rnd.nextInt(255));
                old.add(new long[] {block, page});
              }
            }
            case 6 -> {
              long[] bp = old.get(rnd.nextInt(old.size()));
              guest.putLong((int) bp[0], bp[1] * PAGE + 8L * rnd.nextInt(PAGE / 8), rnd.nextLong());
            }
            case 7 -> {
              long[] bp = rnd.nextBoolean() ? hot.get(rnd.nextInt(hot.size())) : old.get(rnd.nextInt(old.size()));
              guest.fillPage((int) bp[0], bp[1], (byte) 0);
            }
            case 8 -> { // an earlier content comes back (a cache hit must still match the destination)
              if (!patterns.isEmpty()) {
                List<Long> keys = new ArrayList<>(patterns.keySet());
                long key = keys.get(rnd.nextInt(keys.size()));
                guest.writePage((int) (key >>> 40), key & ((1L << 40) - 1), patterns.get(key));
              }
            }
            default -> {
              long[] bp = hot.get(rnd.nextInt(hot.size()));
              byte[] content = new byte[PAGE];
              for (int i = rnd.nextInt(8); i < PAGE; i += 1 + rnd.nextInt(512)) {
                content[i] = (byte) rnd.nextInt();
              }
              guest.writePage((int) bp[0], bp[1], content);
              patterns.put((bp[0] << 40) | bp[1], content);
            }
          }
        }
        save.complete(out); // the guest is stopped from here on
        chunks++;
      }
      out.flush();
      RamLoader loader =
          new RamLoader(RamBlockResolver.of(dstBlocks), RamLoadOptions.defaults().withBlocksStartZeroed(freshDestination));
      MigrationInput in = MigrationInput.of(bytes.toByteArray());
      for (int i = 0; i < chunks; i++) {
        loader.loadChunk(in);
      }
      loader.close();
      String context =
          String.format("xbzrle %s, cache %d pages, %s destination", xbzrle, cacheBytes / PAGE, freshDestination ? "fresh" : "used");
      for (int b = 0; b < srcBlocks.size(); b++) {
        assertSame(srcBlocks.get(b), dstBlocks.get(b), context);
      }
    }
  }

  private static long[] randomPage(Random rnd, GuestMemory m) {
    int block = rnd.nextInt(m.blockCount());
    return new long[] {block, rnd.nextLong(m.pageCount(block))};
  }
}
