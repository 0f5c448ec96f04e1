package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Writers hammer random pages while a reader harvests the dirty log and replays the harvested
 * pages into a shadow copy, the way a precopy RAM saver does. After the writers stop and one last
 * harvest and replay, the shadow must equal RAM byte for byte: any lost mark leaves a stale page.
 */
class DirtyLogConcurrencyTest {
  private static final int PAGE = 4096;

  @Test
  void harvestAndReplayReproducesRamExactly() throws Exception {
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    System.out.println("DirtyLogConcurrencyTest seed=" + seed + " (rerun with -Dferry.seed=" + seed + ")");
    int writers = 4;
    int writesPerWriter = 200_000;
    long[] blockLengths = {8L << 20, 1L << 20};

    List<RamBlock> blocks = new ArrayList<>();
    for (int i = 0; i < blockLengths.length; i++) {
      blocks.add(RamBlock.allocate("b" + i, blockLengths[i]));
    }
    try (GuestRam ram = new GuestRam(blocks);
        Arena arena = Arena.ofShared()) {
      MemorySegment[] shadow = new MemorySegment[blocks.size()];
      for (int i = 0; i < shadow.length; i++) {
        shadow[i] = arena.allocate(blockLengths[i], PAGE); // RAM and shadow both start all-zero
      }
      DirtyLog log = ram.dirtyLog();
      log.start();

      AtomicBoolean writersDone = new AtomicBoolean();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      List<Thread> threads = new ArrayList<>();
      for (int w = 0; w < writers; w++) {
        int id = w;
        SplittableRandom random = new SplittableRandom(seed + 31L * w);
        threads.add(
            Thread.ofPlatform()
                .name("writer-" + w)
                .start(
                    () -> {
                      try (GuestMemory mem = ram.openMemory()) {
                        long version = 0;
                        int done = 0;
                        while (done < writesPerWriter) {
                          // alternate single auto-stepped writes with batches inside one step
                          int batch = random.nextInt(4) == 0 ? 1 + random.nextInt(64) : 0;
                          if (batch > 0) {
                            mem.enterStep();
                          }
                          int n = Math.max(1, batch);
                          for (int k = 0; k < n; k++, done++) {
                            int b = random.nextInt(10) == 0 ? 1 : 0;
                            long page = random.nextLong(mem.pageCount(b));
                            long offset = page * PAGE + id * 8L;
                            version++;
                            switch (random.nextInt(8)) {
                              case 0 -> mem.fill(b, page * PAGE + 1024, 64, (byte) version);
                              case 1 -> mem.addByte(b, page * PAGE + 2048 + id, 1);
                              default -> mem.putLong(b, offset, (version << 8) | id);
                            }
                          }
                          if (batch > 0) {
                            mem.exitStep();
                          }
                        }
                      } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                      }
                    }));
      }

      long harvests = 0;
      long replayedPages = 0;
      List<DirtyBitmap> bitmaps = log.newBitmaps();
      while (!writersDone.get()) {
        if (threads.stream().noneMatch(Thread::isAlive)) {
          writersDone.set(true); // one more harvest below, after every writer has finished
        }
        log.harvestInto(bitmaps);
        harvests++;
        replayedPages += replay(blocks, shadow, bitmaps);
      }
      for (Thread t : threads) {
        t.join();
      }
      log.harvestInto(bitmaps);
      replayedPages += replay(blocks, shadow, bitmaps);
      assertThat(failure.get()).isNull();
      System.out.println("harvests=" + harvests + " replayedPages=" + replayedPages);

      for (int b = 0; b < blocks.size(); b++) {
        List<Long> stale = new ArrayList<>();
        MemorySegment live = blocks.get(b).memory();
        for (long p = 0; p < blockLengths[b] / PAGE && stale.size() < 10; p++) {
          if (MemorySegment.mismatch(live, p * PAGE, (p + 1) * PAGE, shadow[b], p * PAGE, (p + 1) * PAGE) >= 0) {
            stale.add(p);
          }
        }
        assertThat(stale).as("stale pages of block %d (seed %d)", b, seed).isEmpty();
      }
      assertThat(harvests).isGreaterThan(1);
    }
  }

  private static long replay(List<RamBlock> blocks, MemorySegment[] shadow, List<DirtyBitmap> bitmaps) {
    long n = 0;
    for (int b = 0; b < blocks.size(); b++) {
      DirtyBitmap bitmap = bitmaps.get(b);
      for (long p = bitmap.nextSetBit(0); p >= 0; p = bitmap.nextSetBit(p + 1)) {
        MemorySegment.copy(blocks.get(b).memory(), p * PAGE, shadow[b], p * PAGE, PAGE);
        n++;
      }
      bitmap.clearAll();
    }
    return n;
  }
}
