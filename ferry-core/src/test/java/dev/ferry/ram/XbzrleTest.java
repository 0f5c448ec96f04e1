package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

class XbzrleTest {
  private static final int PAGE = 4096;
  private static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  @Test
  void randomPagePairsRoundTrip() {
    System.out.println("XbzrleTest seed " + SEED + " (-Dferry.seed=" + SEED + ")");
    Random r = new Random(SEED);
    byte[] dst = new byte[PAGE];
    for (int iter = 0; iter < 2000; iter++) {
      byte[] old = new byte[PAGE];
      r.nextBytes(old);
      byte[] cur = old.clone();
      int changes = r.nextInt(iter % 4 == 0 ? 3000 : 60);
      for (int c = 0; c < changes; c++) {
        int at = r.nextInt(PAGE);
        int len = 1 + r.nextInt(r.nextBoolean() ? 4 : 300);
        for (int k = at; k < Math.min(PAGE, at + len); k++) {
          cur[k] = (byte) r.nextInt();
        }
      }
      int n = Xbzrle.encode(old, cur, dst, PAGE);
      if (Arrays.equals(old, cur)) {
        assertThat(n).isZero();
        continue;
      }
      if (n < 0) {
        continue; // would not fit: sent as a normal page
      }
      assertThat(n).isPositive().isLessThanOrEqualTo(PAGE);
      byte[] page = old.clone();
      assertThat(Xbzrle.decode(dst, n, MemorySegment.ofArray(page))).isPositive();
      assertThat(page).isEqualTo(cur);
    }
  }

  @Test
  void unchangedIsZeroAndOverflowIsMinusOne() {
    byte[] a = new byte[PAGE];
    assertThat(Xbzrle.encode(a, a.clone(), new byte[PAGE], PAGE)).isZero();
    byte[] b = new byte[PAGE];
    for (int i = 0; i < PAGE; i += 2) {
      b[i] = 1; // alternate changed/unchanged: 3 bytes per changed byte
    }
    assertThat(Xbzrle.encode(a, b, new byte[PAGE], PAGE)).isEqualTo(-1);
    // and a small capacity is respected exactly
    byte[] c = new byte[PAGE];
    c[200] = 7;
    assertThat(Xbzrle.encode(a, c, new byte[PAGE], 3)).isEqualTo(-1);
    assertThat(Xbzrle.encode(a, c, new byte[PAGE], 4)).isEqualTo(4);
  }

  @Test
  void realRecordFromCapture() {
    // capture pc-256M-dirty-xbzrle (spec A.5): skip 0x46C bytes, then one new byte 0xD5
    byte[] delta = HexFormat.of().parseHex("ec0801d5");
    byte[] page = new byte[PAGE];
    Arrays.fill(page, (byte) 0x11);
    assertThat(Xbzrle.decode(delta, delta.length, MemorySegment.ofArray(page))).isEqualTo(0x46D);
    assertThat(page[0x46C]).isEqualTo((byte) 0xD5);
    assertThat(page[0x46B]).isEqualTo((byte) 0x11);
    assertThat(page[0x46D]).isEqualTo((byte) 0x11);
    // the encoder produces exactly those bytes
    byte[] old = new byte[PAGE];
    byte[] cur = new byte[PAGE];
    cur[0x46C] = (byte) 0xD5;
    byte[] dst = new byte[PAGE];
    assertThat(Xbzrle.encode(old, cur, dst, PAGE)).isEqualTo(4);
    assertThat(Arrays.copyOf(dst, 4)).isEqualTo(delta);
  }

  @Test
  void decoderRejectsMalformedDeltas() {
    String[] bad = {
      "00", // one byte left
      "0001", // nzrun 1 but no byte
      "0000ff", // nzrun 0
      "ff7f01aa", // zrun 16383 > page
      "80800101", // three-byte ULEB128
      "0001aa0001bb", // a later zrun of 0
      "0081", // truncated two-byte ULEB128
      "00ff1f" + "aa".repeat(10), // nzrun 4095 beyond input
      "ff1f02aabb", // zrun 4095 then 2 bytes past the page end
    };
    for (String hex : bad) {
      byte[] d = HexFormat.of().parseHex(hex);
      assertThat(Xbzrle.decode(d, d.length, MemorySegment.ofArray(new byte[PAGE])))
          .as(hex)
          .isEqualTo(-1);
    }
    byte[] ok = HexFormat.of().parseHex("0001aa");
    assertThat(Xbzrle.decode(ok, 3, MemorySegment.ofArray(new byte[PAGE]))).isEqualTo(1);
  }
}
