package dev.ferry.kv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class KvTableTest {
  private static final long SEED = Long.getLong("ferry.seed", 42);

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void randomOperationsAgreeWithAHashMapThroughGrowthAndReuse() {
    try (Arena arena = Arena.ofConfined()) {
      SegmentKvMemory mem = new SegmentKvMemory(arena.allocate(32 << 20, 8));
      KvState st = new KvState(0);
      KvTable t = new KvTable(mem, st, true);
      t.format();
      Random rnd = new Random(SEED);
      Map<String, byte[]> model = new HashMap<>();
      for (int i = 0; i < 200_000; i++) {
        String k = "key:" + rnd.nextInt(20_000);
        switch (rnd.nextInt(4)) {
          case 0, 1 -> {
            byte[] v = new byte[rnd.nextInt(rnd.nextInt(10) == 0 ? 2000 : 20)];
            rnd.nextBytes(v);
            t.set(b(k), v, 0, KvTable.Condition.ALWAYS, 0);
            model.put(k, v);
          }
          case 2 -> assertThat(t.delete(b(k), 0)).as("seed %d op %d", SEED, i).isEqualTo(model.remove(k) != null);
          default -> assertThat(t.get(b(k), 0)).as("seed %d op %d", SEED, i).isEqualTo(model.get(k));
        }
        assertThat(t.size()).isEqualTo(model.size());
      }
      assertThat(st.bucketCount).isGreaterThan(KvTable.INITIAL_BUCKETS);
      for (Map.Entry<String, byte[]> e : model.entrySet()) {
        assertThat(t.get(b(e.getKey()), 0)).isEqualTo(e.getValue());
      }
    }
  }

  @Test
  void incrFollowsRedisRules() {
    try (Arena arena = Arena.ofConfined()) {
      KvTable t = new KvTable(new SegmentKvMemory(arena.allocate(1 << 20, 8)), new KvState(0), true);
      t.format();
      assertThat(t.incrBy(b("c"), 1, 0)).isEqualTo(1);
      assertThat(t.incrBy(b("c"), 41, 0)).isEqualTo(42);
      assertThat(t.incrBy(b("c"), -100, 0)).isEqualTo(-58);
      assertThat(t.get(b("c"), 0)).isEqualTo(b("-58"));
      t.set(b("s"), b("abc"), 0, KvTable.Condition.ALWAYS, 0);
      assertThatThrownBy(() -> t.incrBy(b("s"), 1, 0)).hasMessage("ERR value is not an integer or out of range");
      t.set(b("m"), b(Long.toString(Long.MAX_VALUE)), 0, KvTable.Condition.ALWAYS, 0);
      assertThatThrownBy(() -> t.incrBy(b("m"), 1, 0)).hasMessage("ERR increment or decrement would overflow");
      for (String bad : new String[] {"", "+1", "01", "-0", " 1", "1 ", "99999999999999999999"}) {
        t.set(b("x"), b(bad), 0, KvTable.Condition.ALWAYS, 0);
        assertThatThrownBy(() -> t.incrBy(b("x"), 1, 0)).as(bad).isInstanceOf(KvException.class);
      }
    }
  }

  @Test
  void expiryNxXxAndReadOnlyViews() {
    try (Arena arena = Arena.ofConfined()) {
      SegmentKvMemory mem = new SegmentKvMemory(arena.allocate(1 << 20, 8));
      KvState st = new KvState(0);
      KvTable t = new KvTable(mem, st, true);
      t.format();
      assertThat(t.set(b("k"), b("v"), 1000, KvTable.Condition.IF_MISSING, 0)).isTrue();
      assertThat(t.set(b("k"), b("w"), 0, KvTable.Condition.IF_MISSING, 0)).isFalse();
      assertThat(t.set(b("absent"), b("w"), 0, KvTable.Condition.IF_PRESENT, 0)).isFalse();
      assertThat(st.expiresCount).isEqualTo(1);
      assertThat(t.pttl(b("k"), 400)).isEqualTo(600);
      // a read-only view sees the key as gone once expired but changes nothing
      KvTable ro = new KvTable(mem, st, false);
      long hits = st.keyspaceHits;
      assertThat(ro.get(b("k"), 1000)).isNull();
      assertThat(st.keyCount).isEqualTo(1);
      assertThat(st.keyspaceHits + st.keyspaceMisses).isEqualTo(hits + st.keyspaceMisses);
      assertThatThrownBy(() -> ro.set(b("a"), b("b"), 0, KvTable.Condition.ALWAYS, 0)).isInstanceOf(IllegalStateException.class);
      // the writable view removes it when touched
      assertThat(t.get(b("k"), 1000)).isNull();
      assertThat(st.keyCount).isZero();
      assertThat(st.expiresCount).isZero();
      assertThat(st.expiredKeys).isEqualTo(1);
      // active expiry sweeps keys nobody touches
      for (int i = 0; i < 100; i++) {
        t.set(b("e" + i), b("v"), i < 50 ? 10 : 0, KvTable.Condition.ALWAYS, 0);
      }
      assertThat(t.expireSome(20, (int) st.bucketCount)).isEqualTo(50);
      assertThat(st.keyCount).isEqualTo(50);
      assertThat(st.expiresCount).isZero();
    }
  }

  @Test
  void fullRegionRefusesWithRedisOomAndChangesNothing() {
    try (Arena arena = Arena.ofConfined()) {
      KvState st = new KvState(0);
      KvTable t = new KvTable(new SegmentKvMemory(arena.allocate(64 << 10, 8)), st, true);
      t.format();
      int stored = 0;
      try {
        for (; stored < 10_000; stored++) {
          t.set(b("k" + stored), new byte[100], 0, KvTable.Condition.ALWAYS, 0);
        }
      } catch (KvException e) {
        assertThat(e.getMessage()).isEqualTo(KvException.OOM);
      }
      assertThat(stored).isBetween(100, 10_000 - 1);
      assertThat(t.size()).isEqualTo(stored);
      assertThat(t.get(b("k0"), 0)).hasSize(100);
      t.format(); // FLUSHALL gives it all back
      assertThat(t.size()).isZero();
      t.set(b("again"), new byte[100], 0, KvTable.Condition.ALWAYS, 0);
    }
  }
}
