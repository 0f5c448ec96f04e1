package dev.ferry.kv.store;

import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * The keyspace: a chained hash table of binary keys to binary values, all in the region (bucket
 * array and entries from the {@link KvAllocator}), its bookkeeping in {@link KvState}. A cheap
 * view: make one per guest step over that step's memory accessor. Not thread-safe; callers hold
 * one lock for the table.
 *
 * <pre>
 *  buckets: u64[bucketCount]  entry offset of each chain's head (0 = empty); bucketCount a power of two
 *  entry:   +0  u64 next       next entry in the chain (0 = end)
 *           +8  u64 expireAtMs Unix time in ms when the key expires (0 = never)
 *           +16 u32 hash
 *           +20 u32 keyLength
 *           +24 u32 valueLength
 *           +28 key bytes, then value bytes (an entry's block may hold more: a value that still fits is rewritten in place)
 * </pre>
 *
 * Expiry times are wall-clock Unix milliseconds (as Redis keeps them in RDB files), so they mean the
 * same on the destination. An expired key is removed when touched, or by {@link #expireSome}; a
 * read-only view ({@code mayWrite} false: a source after the switch-over) treats it as missing
 * without removing it.
 */
public final class KvTable {
  public static final long INITIAL_BUCKETS = 1024;

  /** An {@code expireAtMs} for {@link #set} that keeps the key's current expiry (SET KEEPTTL). */
  public static final long KEEP_TTL = -1;
  static final int NEXT = 0;
  static final int EXPIRE = 8;
  static final int HASH = 16;
  static final int KEY_LENGTH = 20;
  static final int VALUE_LENGTH = 24;
  static final int KEY = 28;

  private static final Pattern INTEGER = Pattern.compile("-?(0|[1-9][0-9]*)");
  private static final byte[] ZEROS = new byte[4096];

  /** What {@link #set} does with an existing or missing key. */
  public enum Condition {
    ALWAYS,
    /** only when the key does not exist (SET NX) */
    IF_MISSING,
    /** only when the key exists (SET XX) */
    IF_PRESENT
  }

  private final KvMemory memory;
  private final KvState state;
  private final KvAllocator allocator;
  private final boolean mayWrite;

  public KvTable(KvMemory memory, KvState state, boolean mayWrite) {
    this.memory = memory;
    this.state = state;
    this.allocator = new KvAllocator(memory, state);
    this.mayWrite = mayWrite;
  }

  /** Empties the keyspace: a fresh heap and bucket array (also what FLUSHALL does). */
  public void format() {
    checkWritable();
    state.reset(); // the INFO counters stay
    allocator.format();
    long buckets = allocator.allocate(INITIAL_BUCKETS * 8);
    if (buckets == 0) {
      throw new IllegalStateException("kv region of " + memory.byteSize() + " bytes cannot hold a bucket array");
    }
    zero(buckets, INITIAL_BUCKETS * 8);
    state.bucketsOffset = buckets;
    state.bucketCount = INITIAL_BUCKETS;
  }

  public long size() {
    return state.keyCount;
  }

  /** Bytes in use: blocks allocated (entries and bucket array), headers included. */
  public long usedBytes() {
    return state.allocatedBytes;
  }

  /** The value of {@code key}, or null when missing or expired. */
  public byte[] get(byte[] key, long nowMs) {
    long e = find(key, hash(key), nowMs);
    if (mayWrite) { // counters are device state: a read-only view leaves them as they are
      if (e == 0) {
        state.keyspaceMisses++;
      } else {
        state.keyspaceHits++;
      }
    }
    return e == 0 ? null : value(e);
  }

  public boolean exists(byte[] key, long nowMs) {
    return find(key, hash(key), nowMs) != 0;
  }

  /** Milliseconds {@code key} has left: -2 when missing, -1 without expiry (Redis's PTTL). */
  public long pttl(byte[] key, long nowMs) {
    long e = find(key, hash(key), nowMs);
    if (e == 0) {
      return -2;
    }
    long at = memory.getLong(e + EXPIRE);
    return at == 0 ? -1 : Math.max(0, at - nowMs);
  }

  /**
   * Sets {@code key} to {@code value} with {@code expireAtMs} (0: no expiry; {@link #KEEP_TTL}), when {@code condition}
   * allows; true when set.
   *
   * @throws KvException {@link KvException#OOM} when the region is full (nothing changed then)
   */
  public boolean set(byte[] key, byte[] value, long expireAtMs, Condition condition, long nowMs) {
    checkWritable();
    int h = hash(key);
    long e = find(key, h, nowMs);
    if (e == 0 ? condition == Condition.IF_PRESENT : condition == Condition.IF_MISSING) {
      return false;
    }
    if (e == 0) {
      expireAtMs = Math.max(0, expireAtMs);
      long n = newEntry(key, h, value, expireAtMs);
      long bucket = bucketAddress(h);
      memory.putLong(n + NEXT, memory.getLong(bucket));
      memory.putLong(bucket, n);
      state.keyCount++;
      if (expireAtMs != 0) {
        state.expiresCount++;
      }
      maybeGrow();
      return true;
    }
    writeValue(e, key, h, value, expireAtMs);
    return true;
  }

  /**
   * Adds {@code delta} to the integer value of {@code key} (0 when missing) and returns the result;
   * the key keeps its expiry.
   *
   * @throws KvException with Redis's texts for a value that is no integer and for an overflow
   */
  public long incrBy(byte[] key, long delta, long nowMs) {
    checkWritable();
    int h = hash(key);
    long e = find(key, h, nowMs);
    long current = 0;
    if (e != 0) {
      if (memory.getInt(e + VALUE_LENGTH) > 20) {
        throw new KvException("ERR value is not an integer or out of range");
      }
      current = parseInteger(value(e));
    }
    long next;
    try {
      next = Math.addExact(current, delta);
    } catch (ArithmeticException x) {
      throw new KvException("ERR increment or decrement would overflow");
    }
    byte[] value = Long.toString(next).getBytes(StandardCharsets.US_ASCII);
    if (e == 0) {
      set(key, value, 0, Condition.ALWAYS, nowMs);
    } else {
      writeValue(e, key, h, value, memory.getLong(e + EXPIRE));
    }
    return next;
  }

  /** Redis's rule for a string that is an integer: decimal, optional '-', no '+', no leading zeros, fits 64 bits. */
  public static long parseInteger(byte[] v) {
    String s = new String(v, StandardCharsets.US_ASCII);
    boolean ok = !s.isEmpty() && s.length() <= 20 && INTEGER.matcher(s).matches() && !s.equals("-0");
    if (ok) {
      try {
        return Long.parseLong(s);
      } catch (NumberFormatException x) {
        // out of range
      }
    }
    throw new KvException("ERR value is not an integer or out of range");
  }

  /** Removes {@code key}; true when it existed. */
  public boolean delete(byte[] key, long nowMs) {
    checkWritable();
    int h = hash(key);
    long prev = bucketAddress(h);
    for (long e = memory.getLong(prev); e != 0; prev = e + NEXT, e = memory.getLong(prev)) {
      if (matches(e, key, h)) {
        boolean live = !expired(e, nowMs);
        unlink(prev, e);
        if (!live) {
          state.expiredKeys++;
        }
        return live;
      }
    }
    return false;
  }

  /**
   * Active expiry: looks at up to {@code buckets} chains from where the last sweep stopped and
   * removes expired keys; returns how many it removed.
   */
  public int expireSome(long nowMs, int buckets) {
    checkWritable();
    if (state.expiresCount == 0) {
      return 0;
    }
    int removed = 0;
    for (int i = 0; i < buckets; i++) {
      long b = state.expireCursor & (state.bucketCount - 1);
      state.expireCursor = b + 1;
      long prev = state.bucketsOffset + b * 8;
      long e = memory.getLong(prev);
      while (e != 0) {
        long next = memory.getLong(e + NEXT);
        if (expired(e, nowMs)) {
          unlink(prev, e);
          state.expiredKeys++;
          removed++;
        } else {
          prev = e + NEXT;
        }
        e = next;
      }
    }
    return removed;
  }

  // ---------------------------------------------------------------- internals

  /** The live entry for {@code key}, or 0; an expired one is removed first when writes are allowed. */
  private long find(byte[] key, int h, long nowMs) {
    long prev = bucketAddress(h);
    for (long e = memory.getLong(prev); e != 0; prev = e + NEXT, e = memory.getLong(prev)) {
      if (matches(e, key, h)) {
        if (expired(e, nowMs)) {
          if (mayWrite) {
            unlink(prev, e);
            state.expiredKeys++;
          }
          return 0;
        }
        return e;
      }
    }
    return 0;
  }

  /** The value of entry {@code e}. */
  private byte[] value(long e) {
    byte[] v = new byte[memory.getInt(e + VALUE_LENGTH)];
    memory.read(e + KEY + memory.getInt(e + KEY_LENGTH), v, 0, v.length);
    return v;
  }

  private boolean expired(long e, long nowMs) {
    long at = memory.getLong(e + EXPIRE);
    return at != 0 && nowMs >= at;
  }

  private boolean matches(long e, byte[] key, int h) {
    if (memory.getInt(e + HASH) != h || memory.getInt(e + KEY_LENGTH) != key.length) {
      return false;
    }
    byte[] k = new byte[key.length];
    memory.read(e + KEY, k, 0, k.length);
    return java.util.Arrays.equals(k, key);
  }

  private void unlink(long prevLink, long e) {
    memory.putLong(prevLink, memory.getLong(e + NEXT));
    if (memory.getLong(e + EXPIRE) != 0) {
      state.expiresCount--;
    }
    state.keyCount--;
    allocator.free(e);
  }

  private long newEntry(byte[] key, int h, byte[] value, long expireAtMs) {
    long e = allocator.allocate((long) KEY + key.length + value.length);
    if (e == 0) {
      throw new KvException(KvException.OOM);
    }
    memory.putLong(e + NEXT, 0);
    memory.putLong(e + EXPIRE, expireAtMs);
    memory.putInt(e + HASH, h);
    memory.putInt(e + KEY_LENGTH, key.length);
    memory.putInt(e + VALUE_LENGTH, value.length);
    memory.write(e + KEY, key, 0, key.length);
    memory.write(e + KEY + key.length, value, 0, value.length);
    return e;
  }

  /** Gives the existing entry {@code e} a new value and expiry: in place when it fits, else a new entry in its place. */
  private void writeValue(long e, byte[] key, int h, byte[] value, long expireAtMs) {
    long oldExpire = memory.getLong(e + EXPIRE);
    if (expireAtMs == KEEP_TTL) {
      expireAtMs = oldExpire;
    }
    if ((long) KEY + key.length + value.length <= allocator.capacity(e)) {
      memory.putLong(e + EXPIRE, expireAtMs);
      memory.putInt(e + VALUE_LENGTH, value.length);
      memory.write(e + KEY + key.length, value, 0, value.length);
    } else {
      long n = newEntry(key, h, value, expireAtMs);
      long prev = bucketAddress(h);
      while (memory.getLong(prev) != e) {
        prev = memory.getLong(prev) + NEXT;
      }
      memory.putLong(n + NEXT, memory.getLong(e + NEXT));
      memory.putLong(prev, n);
      allocator.free(e);
    }
    if (oldExpire == 0 && expireAtMs != 0) {
      state.expiresCount++;
    } else if (oldExpire != 0 && expireAtMs == 0) {
      state.expiresCount--;
    }
  }

  /** Doubles the bucket array once there is more than one key per bucket (skipped when the region is full). */
  private void maybeGrow() {
    if (state.keyCount <= state.bucketCount || state.bucketCount >= (1L << 40)) {
      return;
    }
    long count = state.bucketCount * 2;
    long buckets = allocator.allocate(count * 8);
    if (buckets == 0) {
      return; // chains get longer; still correct
    }
    zero(buckets, count * 8);
    long old = state.bucketsOffset;
    long mask = count - 1;
    for (long b = 0; b < state.bucketCount; b++) {
      long e = memory.getLong(old + b * 8);
      while (e != 0) {
        long next = memory.getLong(e + NEXT);
        long slot = buckets + ((memory.getInt(e + HASH) & 0xffff_ffffL) & mask) * 8;
        memory.putLong(e + NEXT, memory.getLong(slot));
        memory.putLong(slot, e);
        e = next;
      }
    }
    allocator.free(old);
    state.bucketsOffset = buckets;
    state.bucketCount = count;
    state.expireCursor = 0;
  }

  private long bucketAddress(int h) {
    if (state.bucketCount == 0) {
      throw new IllegalStateException("kv table is not formatted");
    }
    return state.bucketsOffset + ((h & 0xffff_ffffL) & (state.bucketCount - 1)) * 8;
  }

  private void zero(long offset, long bytes) {
    for (long i = 0; i < bytes; i += ZEROS.length) {
      memory.write(offset + i, ZEROS, 0, (int) Math.min(ZEROS.length, bytes - i));
    }
  }

  private void checkWritable() {
    if (!mayWrite) {
      throw new IllegalStateException("kv table view is read-only");
    }
  }

  /** A hash that is the same in every process (the table migrates): FNV-1a, finished with murmur3's mix. */
  static int hash(byte[] key) {
    long h = 0xcbf29ce484222325L;
    for (byte b : key) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    int x = (int) (h ^ (h >>> 32));
    x ^= x >>> 16;
    x *= 0x85ebca6b;
    x ^= x >>> 13;
    x *= 0xc2b2ae35;
    x ^= x >>> 16;
    return x;
  }
}
