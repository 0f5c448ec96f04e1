package dev.ferry.vmstate;

import static dev.ferry.vmstate.VMStateTesting.save;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Truncated and bit-flipped bodies end in a MigrationStreamException (or, for a flipped data bit,
 * in different values), never in another exception type; hostile counts fail before allocating.
 */
class VMStateCorruptionTest {
  static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  /** The body followed by a section footer, as it sits in a stream. */
  static byte[] framed(byte[] body) {
    byte[] s = Arrays.copyOf(body, body.length + 5);
    s[body.length] = 0x7E;
    s[body.length + 4] = 1;
    return s;
  }

  /** Loads a framed body and checks the footer, as the section loader does. */
  static AllKinds loadFramed(byte[] stream) throws IOException {
    MigrationInput in = MigrationInput.of(stream);
    AllKinds o = AllKinds.destination();
    AllKinds.VMSD.load(in, o, 1);
    if (in.readU8() != 0x7E || in.readBe32() != 1) {
      throw in.corrupt("section footer mismatch");
    }
    return o;
  }

  static AllKinds sample(long seed) {
    AllKinds o = AllKinds.random(new Random(seed));
    o.subValue = 12345;
    o.n32 = 3;
    o.vi32 = new int[] {1, 2, 3};
    o.innerCount = 2;
    o.varInners = new java.util.ArrayList<>(
        java.util.List.of(AllKinds.randomInner(new Random(seed)), AllKinds.randomInner(new Random(seed + 1))));
    return o;
  }

  @Test
  void truncationAtEveryOffsetFails() {
    System.out.println("VMStateCorruptionTest seed " + SEED + " (-Dferry.seed=" + SEED + ")");
    byte[] stream = framed(save(AllKinds.VMSD, sample(SEED)));
    for (int len = 0; len < stream.length; len++) {
      byte[] cut = Arrays.copyOf(stream, len);
      int at = len;
      assertThatThrownBy(() -> loadFramed(cut))
          .as("truncated at %d", at)
          .isInstanceOf(MigrationStreamException.class);
    }
  }

  @Test
  void everyFlippedBitFailsCleanlyOrLoadsOtherValues() throws IOException {
    byte[] stream = framed(save(AllKinds.VMSD, sample(SEED)));
    assertThat(loadFramed(stream).state()).isEqualTo(sample(SEED).state());
    int failures = 0;
    for (int bit = 0; bit < stream.length * 8; bit++) {
      byte[] bad = stream.clone();
      bad[bit / 8] ^= (byte) (1 << (bit % 8));
      try {
        // data bits load as other values; padding and bool bits other than bit 0 load as before
        assertThat(loadFramed(bad).state()).as("bit %d", bit).isNotNull();
      } catch (MigrationStreamException e) {
        failures++;
        assertThat(e.getMessage()).isNotBlank();
      } catch (IOException | RuntimeException e) {
        fail("bit " + bit + " escaped as " + e, e);
      }
    }
    assertThat(failures).isPositive();
  }

  static final class Hostile {
    long count;
    long[] values = new long[2];
    int allocations;
  }

  static final VMStateDescription<Hostile> HOSTILE =
      VMStateDescription.<Hostile>builder("hostile")
          .version(1)
          .uint32("count", h -> h.count, (h, v) -> h.count = v)
          .uint64VarArray("values", "count", 16, h -> h.values, (h, a) -> {
            h.allocations++;
            h.values = a;
          })
          .build();

  @Test
  void hostileVarArrayCountFailsBeforeAllocating() {
    byte[] body = {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF};
    Hostile h = new Hostile();
    assertThatThrownBy(() -> HOSTILE.load(MigrationInput.of(body), h, 1))
        .isInstanceOfSatisfying(MigrationStreamException.class, e -> {
          assertThat(e.field()).isEqualTo("values");
          assertThat(e.offset()).isEqualTo(4);
        })
        .hasMessageContaining("4294967295")
        .hasMessageContaining("0..16");
    assertThat(h.allocations).isZero();
    assertThat(h.values).hasSize(2);
  }

  @Test
  void hostileVbufferSizeFailsBeforeAllocating() {
    AllKinds src = new AllKinds();
    src.bufLen = 3;
    src.vbuf = new byte[3];
    byte[] body = save(AllKinds.VMSD, src);
    // buf_len is the int32 before the 3 vbuf bytes, 3 unused bytes and the structs
    int at = indexOfInt(body, 3);
    body[at] = 0x7F;
    assertThatThrownBy(() -> AllKinds.VMSD.load(MigrationInput.of(body), AllKinds.destination(), 1))
        .isInstanceOfSatisfying(MigrationStreamException.class,
            e -> assertThat(e.field()).isEqualTo("vbuf"))
        .hasMessageContaining("0..64");
  }

  @Test
  void equalMismatchFailsNamingTheField() {
    AllKinds src = new AllKinds();
    src.eq16 = 301;
    byte[] body = save(AllKinds.VMSD, src);
    assertThatThrownBy(() -> AllKinds.VMSD.load(MigrationInput.of(body), AllKinds.destination(), 1))
        .isInstanceOfSatisfying(MigrationStreamException.class,
            e -> assertThat(e.field()).isEqualTo("eq16"))
        .hasMessageContaining("uint16 equal mismatch: stream has 301, this side has 300");
  }

  @Test
  void nestedErrorsNameTheElementPath() {
    byte[] body = save(AllKinds.VMSD, sample(SEED));
    // cut inside fixed_inners[1].b: find it by saving up to there
    AllKinds probe = sample(SEED);
    int end = body.length;
    int cut = -1;
    for (int len = end - 1; len > 0; len--) {
      try {
        AllKinds.VMSD.load(MigrationInput.of(Arrays.copyOf(body, len)), AllKinds.destination(), 1);
      } catch (MigrationStreamException e) {
        if ("fixed_inners[1].b[1]".equals(e.field())) {
          cut = len;
          break;
        }
      } catch (IOException e) {
        fail("unexpected", e);
      }
    }
    assertThat(cut).as("some truncation names fixed_inners[1].b[1]").isPositive();
    assertThat(probe).isNotNull();
  }

  private static int indexOfInt(byte[] b, int v) {
    for (int i = b.length - 4; i >= 0; i--) {
      if (b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 0 && b[i + 3] == v) {
        return i + 3;
      }
    }
    throw new AssertionError();
  }
}
