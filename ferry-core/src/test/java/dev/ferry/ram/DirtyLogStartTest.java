package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Attacks {@link DirtyLog#start()} without a step boundary (DirtyLog, "A flip does not wait for
 * whole steps"): writers are inside steps that began with logging off and do not end until the
 * test lets them, writing all the while; start() must return while those steps are still open, and
 * a saver that copies every page once after start() and then replays each harvest (as the RAM
 * saver's first pass and rounds do) must end with a copy equal to RAM, byte for byte.
 */
class DirtyLogStartTest {
  private static final int PAGE = 4096;

  @Test
  void startInsideRunningStepsReturnsBeforeTheyEndAndMissesNoWrite() throws Exception {
    long seed = Long.getLong("ferry.seed", 0x5eedL);
    System.out.println("DirtyLogStartTest seed=" + seed + " (rerun with -Dferry.seed=" + seed + ")");
    int writers = 3;
    long length = 4L << 20;
    RamBlock block = RamBlock.allocate("ram", length);
    try (GuestRam ram = new GuestRam(List.of(block)); // closes the block
        Arena arena = Arena.ofConfined()) {
      DirtyLog log = ram.dirtyLog();
      for (int round = 0; round < 3; round++) { // later rounds start a log that ran and stopped before
        MemorySegment shadow = arena.allocate(length, PAGE);
        AtomicBoolean endSteps = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch inStep = new CountDownLatch(writers);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
          int id = w;
          SplittableRandom random = new SplittableRandom(seed + 31L * w + 1000L * round);
          threads.add(Thread.ofPlatform().name("writer-" + w).start(() -> {
            try (GuestMemory mem = ram.openMemory()) {
              long version = 0;
              // one long step, begun with logging off; it ends only when the test says so
              mem.enterStep();
              inStep.countDown();
              while (!endSteps.get()) {
                write(mem, random, id, ++version);
              }
              mem.exitStep();
              // then ordinary short steps, until the last harvest
              while (!stop.get()) {
                mem.enterStep();
                for (int k = 0; k < 16; k++) {
                  write(mem, random, id, ++version);
                }
                mem.exitStep();
              }
            } catch (Throwable t) {
              failure.compareAndSet(null, t);
            }
          }));
        }
        assertThat(inStep.await(10, TimeUnit.SECONDS)).isTrue();

        log.start();
        // the long steps are still open: start() did not wait for their end
        assertThat(endSteps.get()).isFalse();
        assertThat(threads).allMatch(Thread::isAlive);

        // the first pass: every page once, while the writers go on in their old steps
        MemorySegment.copy(block.memory(), 0, shadow, 0, length);
        List<DirtyBitmap> bitmaps = log.newBitmaps();
        log.harvestInto(bitmaps); // waits for nothing long: the writers moved into the new phase
        replay(block, shadow, bitmaps.get(0));
        endSteps.set(true);
        for (int h = 0; h < 5; h++) {
          log.harvestInto(bitmaps);
          replay(block, shadow, bitmaps.get(0));
        }
        stop.set(true);
        for (Thread t : threads) {
          t.join();
        }
        log.harvestInto(bitmaps);
        replay(block, shadow, bitmaps.get(0));
        assertThat(failure.get()).isNull();

        List<Long> stale = new ArrayList<>();
        for (long p = 0; p < length / PAGE && stale.size() < 10; p++) {
          if (MemorySegment.mismatch(block.memory(), p * PAGE, (p + 1) * PAGE, shadow, p * PAGE, (p + 1) * PAGE) >= 0) {
            stale.add(p);
          }
        }
        assertThat(stale).as("stale pages in round %d (seed %d)", round, seed).isEmpty();
        log.stop();
      }
    }
  }

  private static void write(GuestMemory mem, SplittableRandom random, int id, long version) {
    long page = random.nextLong(mem.pageCount(0));
    switch (random.nextInt(4)) {
      case 0 -> mem.fill(0, page * PAGE + 1024, 64, (byte) version);
      case 1 -> mem.addByte(0, page * PAGE + 2048 + id, 1);
      default -> mem.putLong(0, page * PAGE + id * 8L, (version << 8) | id);
    }
  }

  private static void replay(RamBlock block, MemorySegment shadow, DirtyBitmap bitmap) {
    for (long p = bitmap.nextSetBit(0); p >= 0; p = bitmap.nextSetBit(p + 1)) {
      MemorySegment.copy(block.memory(), p * PAGE, shadow, p * PAGE, PAGE);
    }
    bitmap.clearAll();
  }
}
