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
 * Attacks {@link DirtyLog#start()} while the guest writes: writers run steps that began with
 * logging off and keep writing through the start; a saver that copies every page once after
 * start() and then replays each harvest (as the RAM saver's first pass and rounds do) must end with
 * a copy equal to RAM, byte for byte. Later rounds start a log that ran and stopped before.
 */
class DirtyLogStartTest {
  private static final int PAGE = 4096;

  @Test
  void startWhileTheGuestWritesMissesNoWrite() throws Exception {
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
        AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch writing = new CountDownLatch(writers);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
          int id = w;
          SplittableRandom random = new SplittableRandom(seed + 31L * w + 1000L * round);
          threads.add(Thread.ofPlatform().name("writer-" + w).start(() -> {
            try (GuestMemory mem = ram.openMemory()) {
              long version = 0;
              while (!stop.get()) {
                mem.enterStep();
                for (int k = 0; k < 64; k++) {
                  write(mem, random, id, ++version);
                }
                mem.exitStep();
                if (version == 64) {
                  writing.countDown(); // steps with logging off are running
                }
              }
            } catch (Throwable t) {
              failure.compareAndSet(null, t);
            }
          }));
        }
        assertThat(writing.await(10, TimeUnit.SECONDS)).isTrue();

        log.start();
        // the first pass: every page once, while the writers go on
        MemorySegment.copy(block.memory(), 0, shadow, 0, length);
        List<DirtyBitmap> bitmaps = log.newBitmaps();
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
