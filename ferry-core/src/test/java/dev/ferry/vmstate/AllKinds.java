package dev.ferry.vmstate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/** An object with one field of every kind, for round-trip, fragmentation and corruption tests. */
final class AllKinds {
  long i8, u8, i16, u16, i32, u32, i64, u64, timer, eq8 = 7, eq16 = 300, eq32 = 70000,
      eqI32 = -5, eq64 = -2, le = 10;
  boolean flag;
  double f64;
  byte[] ai8 = new byte[3], au8 = new byte[3];
  short[] ai16 = new short[3], au16 = new short[3];
  int[] ai32 = new int[3], au32 = new int[3];
  long[] ai64 = new long[3], au64 = new long[3];
  long n8, n16, n32u;
  long n32;
  byte[] vi8 = new byte[0];
  short[] vu16 = new short[0];
  int[] vi32 = new int[0];
  long[] vu64 = new long[0];
  byte[] buf = new byte[5];
  long bufLen;
  byte[] vbuf = new byte[0];
  Inner inner = new Inner();
  List<Inner> fixedInners = new ArrayList<>(List.of(new Inner(), new Inner()));
  long innerCount;
  List<Inner> varInners = new ArrayList<>();
  long subValue;

  static final class Inner {
    long a;
    short[] b = new short[2];

    @Override
    public boolean equals(Object o) {
      return o instanceof Inner i && a == i.a && Arrays.equals(b, i.b);
    }

    @Override
    public int hashCode() {
      return Objects.hash(a, Arrays.hashCode(b));
    }
  }

  static final VMStateDescription<Inner> INNER =
      VMStateDescription.<Inner>builder("inner")
          .version(1)
          .int32("a", i -> i.a, (i, v) -> i.a = v)
          .uint16Array("b", 2, i -> i.b)
          .build();

  static final VMStateDescription<AllKinds> SUB =
      VMStateDescription.<AllKinds>builder("all/sub")
          .version(1)
          .needed(o -> o.subValue != 0)
          .uint64("value", o -> o.subValue, (o, v) -> o.subValue = v)
          .build();

  static final VMStateDescription<AllKinds> VMSD =
      VMStateDescription.<AllKinds>builder("all")
          .version(1)
          .int8("i8", o -> o.i8, (o, v) -> o.i8 = v)
          .uint8("u8", o -> o.u8, (o, v) -> o.u8 = v)
          .int16("i16", o -> o.i16, (o, v) -> o.i16 = v)
          .uint16("u16", o -> o.u16, (o, v) -> o.u16 = v)
          .int32("i32", o -> o.i32, (o, v) -> o.i32 = v)
          .uint32("u32", o -> o.u32, (o, v) -> o.u32 = v)
          .int64("i64", o -> o.i64, (o, v) -> o.i64 = v)
          .uint64("u64", o -> o.u64, (o, v) -> o.u64 = v)
          .bool("flag", o -> o.flag, (o, v) -> o.flag = v)
          .float64("f64", o -> o.f64, (o, v) -> o.f64 = v)
          .timer("timer", o -> o.timer, (o, v) -> o.timer = v)
          .uint8Equal("eq8", o -> o.eq8)
          .uint16Equal("eq16", o -> o.eq16)
          .uint32Equal("eq32", o -> o.eq32)
          .int32Equal("eqI32", o -> o.eqI32)
          .uint64Equal("eq64", o -> o.eq64)
          .int32Le("le", o -> o.le, (o, v) -> o.le = v)
          .int8Array("ai8", 3, o -> o.ai8)
          .uint8Array("au8", 3, o -> o.au8)
          .int16Array("ai16", 3, o -> o.ai16)
          .uint16Array("au16", 3, o -> o.au16)
          .int32Array("ai32", 3, o -> o.ai32)
          .uint32Array("au32", 3, o -> o.au32)
          .int64Array("ai64", 3, o -> o.ai64)
          .uint64Array("au64", 3, o -> o.au64)
          .uint8("n8", o -> o.n8, (o, v) -> o.n8 = v)
          .uint16("n16", o -> o.n16, (o, v) -> o.n16 = v)
          .int32("n32", o -> o.n32, (o, v) -> o.n32 = v)
          .uint32("n32u", o -> o.n32u, (o, v) -> o.n32u = v)
          .int8VarArray("vi8", "n8", 16, o -> o.vi8, (o, a) -> o.vi8 = a)
          .uint16VarArray("vu16", "n16", 16, o -> o.vu16, (o, a) -> o.vu16 = a)
          .int32VarArray("vi32", "n32", 16, o -> o.vi32, (o, a) -> o.vi32 = a)
          .uint64VarArray("vu64", "n32u", 16, o -> o.vu64, (o, a) -> o.vu64 = a)
          .buffer("buf", 5, o -> o.buf)
          .int32("buf_len", o -> o.bufLen, (o, v) -> o.bufLen = v)
          .vbuffer("vbuf", "buf_len", 64, o -> o.vbuf, (o, b) -> o.vbuf = b)
          .unused(3)
          .struct("inner", INNER, o -> o.inner)
          .structArray("fixed_inners", 2, INNER, o -> o.fixedInners)
          .uint8("inner_count", o -> o.innerCount, (o, v) -> o.innerCount = v)
          .structVarArray("var_inners", "inner_count", 8, INNER, o -> o.varInners, Inner::new)
          .subsection(SUB)
          .build();

  /** Random values in range for every field. */
  static AllKinds random(Random r) {
    AllKinds o = new AllKinds();
    o.i8 = (byte) r.nextInt();
    o.u8 = r.nextInt(256);
    o.i16 = (short) r.nextInt();
    o.u16 = r.nextInt(65536);
    o.i32 = r.nextInt();
    o.u32 = Integer.toUnsignedLong(r.nextInt());
    o.i64 = r.nextLong();
    o.u64 = r.nextLong();
    o.flag = r.nextBoolean();
    o.f64 = r.nextDouble() * 1e9;
    o.timer = r.nextBoolean() ? -1 : r.nextLong() & Long.MAX_VALUE;
    o.le = r.nextInt(11);
    r.nextBytes(o.ai8);
    r.nextBytes(o.au8);
    for (int i = 0; i < 3; i++) {
      o.ai16[i] = (short) r.nextInt();
      o.au16[i] = (short) r.nextInt();
      o.ai32[i] = r.nextInt();
      o.au32[i] = r.nextInt();
      o.ai64[i] = r.nextLong();
      o.au64[i] = r.nextLong();
    }
    o.n8 = r.nextInt(17);
    o.n16 = r.nextInt(17);
    o.n32 = r.nextInt(17);
    o.n32u = r.nextInt(17);
    o.vi8 = new byte[(int) o.n8];
    r.nextBytes(o.vi8);
    o.vu16 = new short[(int) o.n16];
    for (int i = 0; i < o.vu16.length; i++) {
      o.vu16[i] = (short) r.nextInt();
    }
    o.vi32 = r.ints((int) o.n32).toArray();
    o.vu64 = r.longs(o.n32u).toArray();
    r.nextBytes(o.buf);
    o.bufLen = r.nextInt(65);
    o.vbuf = new byte[(int) o.bufLen];
    r.nextBytes(o.vbuf);
    o.inner = randomInner(r);
    o.fixedInners = new ArrayList<>(List.of(randomInner(r), randomInner(r)));
    o.innerCount = r.nextInt(9);
    o.varInners = new ArrayList<>();
    for (int i = 0; i < o.innerCount; i++) {
      o.varInners.add(randomInner(r));
    }
    o.subValue = r.nextBoolean() ? r.nextLong() | 1 : 0;
    return o;
  }

  static Inner randomInner(Random r) {
    Inner i = new Inner();
    i.a = r.nextInt();
    i.b[0] = (short) r.nextInt();
    i.b[1] = (short) r.nextInt();
    return i;
  }

  /** A fresh destination object: the equal fields match, le's bound allows any saved value. */
  static AllKinds destination() {
    return new AllKinds();
  }

  /** All migrated state, for comparisons. */
  String state() {
    return String.join("|",
        Arrays.toString(new long[] {i8, u8, i16, u16, i32, u32, i64, u64, timer, le, n8, n16, n32,
            n32u, bufLen, innerCount, subValue}),
        Boolean.toString(flag), Double.toString(f64), Arrays.toString(ai8), Arrays.toString(au8),
        Arrays.toString(ai16), Arrays.toString(au16), Arrays.toString(ai32), Arrays.toString(au32),
        Arrays.toString(ai64), Arrays.toString(au64), Arrays.toString(vi8), Arrays.toString(vu16),
        Arrays.toString(vi32), Arrays.toString(vu64), Arrays.toString(buf), Arrays.toString(vbuf),
        varInners.size() + "", innersState(fixedInners), innersState(varInners), innersState(List.of(inner)));
  }

  private static String innersState(List<Inner> l) {
    StringBuilder sb = new StringBuilder();
    for (Inner i : l) {
      sb.append(i.a).append(Arrays.toString(i.b));
    }
    return sb.toString();
  }
}
