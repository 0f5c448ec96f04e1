package dev.ferry.kv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class KvAllocatorTest {
  private static final long SEED = Long.getLong("ferry.seed", 42);

  @Test
  void sizeClassesArePowersOfTwoWithTheHeader() {
    assertThat(KvAllocator.blockBytes(KvAllocator.classOf(0))).isEqualTo(32);
    assertThat(KvAllocator.blockBytes(KvAllocator.classOf(24))).isEqualTo(32);
    assertThat(KvAllocator.blockBytes(KvAllocator.classOf(25))).isEqualTo(64);
    assertThat(KvAllocator.blockBytes(KvAllocator.classOf(1 << 20))).isEqualTo(2 << 20);
  }

  @Test
  void randomAllocationsNeverOverlapAndFreedBlocksAreReused() {
    try (Arena arena = Arena.ofConfined()) {
      SegmentKvMemory mem = new SegmentKvMemory(arena.allocate(4 << 20, 8));
      KvState st = new KvState(0);
      KvAllocator a = new KvAllocator(mem, st);
      a.format();
      Random rnd = new Random(SEED);
      Map<Long, Long> live = new HashMap<>(); // payload -> requested bytes
      List<Long> order = new ArrayList<>();
      for (int i = 0; i < 20_000; i++) {
        if (!order.isEmpty() && rnd.nextInt(3) == 0) {
          long p = order.remove(rnd.nextInt(order.size()));
          // the payload still holds its fill pattern: nobody else wrote into it
          long n = live.remove(p);
          for (long o = 0; o + 8 <= n; o += 8) {
            assertThat(mem.getLong(p + o)).as("seed %d", SEED).isEqualTo(p ^ o);
          }
          a.free(p);
        } else {
          long n = rnd.nextInt(rnd.nextBoolean() ? 64 : 4000);
          long p = a.allocate(n);
          if (p == 0) {
            continue; // full
          }
          assertThat(a.capacity(p)).isGreaterThanOrEqualTo(n);
          assertThat(p).isGreaterThanOrEqualTo(KvAllocator.RESERVED_BYTES + KvAllocator.HEADER_BYTES);
          assertThat(p + n).isLessThanOrEqualTo(mem.byteSize());
          for (long o = 0; o + 8 <= n; o += 8) {
            mem.putLong(p + o, p ^ o);
          }
          live.put(p, n);
          order.add(p);
        }
      }
      long expected = 0;
      for (long p : live.keySet()) {
        expected += a.capacity(p) + KvAllocator.HEADER_BYTES;
      }
      assertThat(st.allocatedBytes).isEqualTo(expected);
    }
  }

  @Test
  void fullRegionSaysSoAndDoubleFreeIsCaught() {
    try (Arena arena = Arena.ofConfined()) {
      SegmentKvMemory mem = new SegmentKvMemory(arena.allocate(4096, 8));
      KvState st = new KvState(0);
      KvAllocator a = new KvAllocator(mem, st);
      a.format();
      assertThat(a.allocate(5000)).isZero();
      long p = a.allocate(100);
      assertThat(p).isNotZero();
      a.free(p);
      assertThatThrownBy(() -> a.free(p)).isInstanceOf(IllegalStateException.class).hasMessageContaining("no allocated block");
      assertThatThrownBy(() -> a.free(12)).isInstanceOf(IllegalStateException.class).hasMessageContaining("outside the heap");
      assertThat(a.allocate(100)).isEqualTo(p); // reused from the free list
    }
  }
}
