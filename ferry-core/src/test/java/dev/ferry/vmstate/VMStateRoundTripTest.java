package dev.ferry.vmstate;

import static dev.ferry.vmstate.VMStateTesting.load;
import static dev.ferry.vmstate.VMStateTesting.save;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.testing.FragmentingChannel;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

class VMStateRoundTripTest {
  static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  @Test
  void everyFieldKindRoundTrips() throws IOException {
    System.out.println("VMStateRoundTripTest seed " + SEED + " (-Dferry.seed=" + SEED + ")");
    Random r = new Random(SEED);
    for (int round = 0; round < 200; round++) {
      AllKinds src = AllKinds.random(r);
      byte[] bytes = save(AllKinds.VMSD, src);
      AllKinds dst = AllKinds.destination();
      load(AllKinds.VMSD, bytes, dst, 1);
      assertThat(dst.state()).isEqualTo(src.state());
      assertThat(save(AllKinds.VMSD, dst)).isEqualTo(bytes);
    }
  }

  @Test
  void scalarsUseQemuWireEncoding() throws IOException {
    record Box(long[] v) {}
    VMStateDescription<Box> d =
        VMStateDescription.<Box>builder("box")
            .version(1)
            .int8("a", b -> b.v[0], (b, x) -> b.v[0] = x)
            .uint16("b", b -> b.v[1], (b, x) -> b.v[1] = x)
            .int32("c", b -> b.v[2], (b, x) -> b.v[2] = x)
            .uint32("d", b -> b.v[3], (b, x) -> b.v[3] = x)
            .uint64("e", b -> b.v[4], (b, x) -> b.v[4] = x)
            .build();
    Box box = new Box(new long[] {-2, 0xBEEF, -3, 0xFFFF_FFFEL, -1});
    byte[] bytes = save(d, box);
    assertThat(bytes)
        .containsExactly(0xFE, 0xBE, 0xEF, 0xFF, 0xFF, 0xFF, 0xFD, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    Box back = new Box(new long[5]);
    load(d, bytes, back, 1);
    assertThat(back.v()).containsExactly(-2, 0xBEEF, -3, 0xFFFF_FFFEL, -1);
  }

  @Test
  void unsignedValuesAreRangeCheckedOnSave() {
    AllKinds o = new AllKinds();
    o.u8 = 256;
    assertThatThrownBy(() -> save(AllKinds.VMSD, o))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("'u8'")
        .hasMessageContaining("256");
    AllKinds p = new AllKinds();
    p.u32 = -1;
    assertThatThrownBy(() -> save(AllKinds.VMSD, p)).hasMessageContaining("'u32'");
  }

  @Test
  void fragmentedInputLoadsTheSame() throws IOException {
    Random r = new Random(SEED + 1);
    for (int round = 0; round < 30; round++) {
      AllKinds src = AllKinds.random(r);
      src.subValue = 42;
      byte[] bytes = save(AllKinds.VMSD, src);
      AllKinds one = AllKinds.destination();
      AllKinds.VMSD.load(new MigrationInput(FragmentingChannel.oneByteAtATime(bytes)), one, 1);
      assertThat(one.state()).isEqualTo(src.state());
      AllKinds rnd = AllKinds.destination();
      AllKinds.VMSD.load(
          new MigrationInput(FragmentingChannel.randomShortReads(bytes, SEED + round, 7)), rnd, 1);
      assertThat(rnd.state()).isEqualTo(src.state());
    }
  }

  @Test
  void varArraysAreReallocatedToTheLoadedCount() throws IOException {
    AllKinds src = new AllKinds();
    src.n32 = 2;
    src.vi32 = new int[] {5, 6};
    AllKinds dst = AllKinds.destination();
    dst.vi32 = new int[10];
    load(AllKinds.VMSD, save(AllKinds.VMSD, src), dst, 1);
    assertThat(dst.vi32).containsExactly(5, 6);
  }
}
