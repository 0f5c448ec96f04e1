package dev.ferry.kv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class KvStateDeviceTest {
  private static KvState formatted(Arena arena) {
    KvState s = new KvState(1 << 20);
    KvTable t = new KvTable(new SegmentKvMemory(arena.allocate(1 << 20, 8)), s, true);
    t.format();
    for (int i = 0; i < 100; i++) {
      t.set(("k" + i).getBytes(), new byte[i], i % 3 == 0 ? 99 : 0, KvTable.Condition.ALWAYS, 0);
    }
    t.delete("k5".getBytes(), 0);
    return s;
  }

  @Test
  void aRealStatePassesAndDamagedOnesAreRefusedNamingTheField() {
    try (Arena arena = Arena.ofConfined()) {
      KvStateDevice.check(formatted(arena));
      KvStateDevice.check(new KvState(1 << 20));

      KvState s = formatted(arena);
      s.bucketCount = 1000;
      assertThatThrownBy(() -> KvStateDevice.check(s)).hasMessageContaining("bucket_count 1000 is not a power of two");
      KvState h = formatted(arena);
      h.heapTop = (1 << 20) + 8;
      assertThatThrownBy(() -> KvStateDevice.check(h)).hasMessageContaining("heap_top");
      KvState f = formatted(arena);
      f.freeHeads[3] = 1L << 40;
      assertThatThrownBy(() -> KvStateDevice.check(f)).hasMessageContaining("free_heads[3]");
      KvState e = formatted(arena);
      e.expiresCount = e.keyCount + 1;
      assertThatThrownBy(() -> KvStateDevice.check(e)).hasMessageContaining("counts do not add up");
      KvState u = new KvState(1 << 20);
      u.keyCount = 3;
      assertThatThrownBy(() -> KvStateDevice.check(u)).hasMessageContaining("unformatted");
    }
  }

  @Test
  void theDescriptionCoversEveryField() {
    assertThat(KvStateDevice.DESCRIPTION.name()).isEqualTo("ferry-kv");
    assertThat(KvStateDevice.DESCRIPTION.version()).isEqualTo(1);
    String dump = KvStateDevice.DESCRIPTION.dump().toString();
    for (String field : new String[] {"region_bytes", "buckets_offset", "bucket_count", "key_count", "expires_count", "heap_top",
        "allocated_bytes", "free_heads", "expire_cursor", "commands_processed", "expired_keys", "keyspace_hits", "keyspace_misses"}) {
      assertThat(dump).contains(field);
    }
  }
}
