package dev.ferry.vmstate;

import static dev.ferry.vmstate.VMStateTesting.load;
import static dev.ferry.vmstate.VMStateTesting.save;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.VersionMismatchException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The cases of QEMU's test-vmstate, and hook order. */
class VMStateVersioningTest {
  static final class Dev {
    long a;
    long b;
    long c;
    long d = -1;
    long sub;
    boolean hasC;
    final List<String> log = new ArrayList<>();
  }

  /** Version 1: a, b. */
  static final VMStateDescription<Dev> V1 =
      VMStateDescription.<Dev>builder("dev")
          .version(1)
          .uint32("a", o -> o.a, (o, v) -> o.a = v)
          .uint64("b", o -> o.b, (o, v) -> o.b = v)
          .build();

  static final VMStateDescription<Dev> SUB =
      VMStateDescription.<Dev>builder("dev/sub")
          .version(1)
          .needed(o -> o.sub != 0)
          .preLoad(o -> o.log.add("sub.preLoad"))
          .postLoad((o, v) -> o.log.add("sub.postLoad " + v))
          .preSave(o -> o.log.add("sub.preSave"))
          .postSave(o -> o.log.add("sub.postSave"))
          .uint16("sub", o -> o.sub, (o, v) -> o.sub = v)
          .build();

  /** Version 2 loads 1: adds d since 2, c when a > 10 (exists-test on loaded data), a subsection. */
  static final VMStateDescription<Dev> V2 =
      VMStateDescription.<Dev>builder("dev")
          .version(2)
          .minimumVersion(1)
          .preLoad(o -> {
            o.log.add("preLoad");
            o.sub = 77; // what a missing subsection leaves
          })
          .postLoad((o, v) -> o.log.add("postLoad " + v))
          .preSave(o -> o.log.add("preSave"))
          .postSave(o -> o.log.add("postSave"))
          .uint32("a", o -> o.a, (o, v) -> {
            o.log.add("field a");
            o.a = v;
          })
          .uint64("b", o -> o.b, (o, v) -> o.b = v)
          .int32("c", o -> o.c, (o, v) -> o.c = v)
          .existsIf((o, v) -> o.a > 10)
          .int64("d", o -> o.d, (o, v) -> o.d = v)
          .since(2)
          .subsection(SUB)
          .build();

  static Dev dev(long a, long b, long c, long d, long sub) {
    Dev o = new Dev();
    o.a = a;
    o.b = b;
    o.c = c;
    o.d = d;
    o.sub = sub;
    return o;
  }

  @Test
  void loadsVersion1IntoVersion2SkippingNewerFields() throws IOException {
    byte[] v1 = save(V1, dev(3, 4, 0, 0, 0));
    Dev o = new Dev();
    load(V2, v1, o, 1);
    assertThat(o.a).isEqualTo(3);
    assertThat(o.b).isEqualTo(4);
    assertThat(o.d).as("since-2 field untouched").isEqualTo(-1);
    assertThat(o.sub).as("missing subsection keeps preLoad's default").isEqualTo(77);
    assertThat(o.log).containsExactly("preLoad", "field a", "postLoad 1");
  }

  @Test
  void existsTestFalseSkipsTheFieldAndTrueReadsIt() throws IOException {
    byte[] small = save(V2, dev(5, 1, 99, 2, 0));
    assertThat(small).hasSize(4 + 8 + 8);
    Dev o = new Dev();
    load(V2, small, o, 2);
    assertThat(o.c).isZero();
    byte[] big = save(V2, dev(50, 1, 99, 2, 0));
    assertThat(big).hasSize(4 + 8 + 4 + 8);
    Dev p = new Dev();
    load(V2, big, p, 2);
    assertThat(p.c).isEqualTo(99);
  }

  @Test
  void neededFalseOmitsTheSubsectionAndTrueSendsIt() throws IOException {
    assertThat(save(V2, dev(1, 1, 0, 0, 0))).hasSize(20);
    byte[] withSub = save(V2, dev(1, 1, 0, 0, 9));
    assertThat(withSub).hasSize(20 + 1 + 1 + 7 + 4 + 2);
    Dev o = new Dev();
    load(V2, withSub, o, 2);
    assertThat(o.sub).isEqualTo(9);
  }

  @Test
  void hookOrderOnSaveAndLoad() throws IOException {
    Dev src = dev(1, 1, 0, 0, 9);
    byte[] bytes = save(V2, src);
    assertThat(src.log).containsExactly("preSave", "sub.preSave", "sub.postSave", "postSave");
    Dev o = new Dev();
    load(V2, bytes, o, 2);
    assertThat(o.log)
        .containsExactly("preLoad", "field a", "sub.preLoad", "sub.postLoad 1", "postLoad 2");
  }

  @Test
  void postSaveRunsWhenAFieldFails() {
    Dev src = dev(-1, 1, 0, 0, 0); // a is uint32
    assertThatThrownBy(() -> save(V2, src)).isInstanceOf(IllegalStateException.class);
    assertThat(src.log).containsExactly("preSave", "postSave");
  }

  @Test
  void tooNewVersionFails() {
    byte[] v2 = save(V2, dev(1, 1, 0, 0, 0));
    assertThatThrownBy(() -> load(V1, v2, new Dev(), 2))
        .isInstanceOfSatisfying(VersionMismatchException.class, e -> {
          assertThat(e.tooNew()).isTrue();
          assertThat(e.actual()).isEqualTo(2);
          assertThat(e.maximum()).isEqualTo(1);
        })
        .hasMessageContaining("'dev'");
  }

  @Test
  void tooOldVersionFails() {
    VMStateDescription<Dev> v3 =
        VMStateDescription.<Dev>builder("dev").version(3).minimumVersion(2)
            .uint32("a", o -> o.a, (o, v) -> o.a = v).build();
    assertThatThrownBy(() -> load(v3, save(V1, dev(1, 1, 0, 0, 0)), new Dev(), 1))
        .isInstanceOfSatisfying(VersionMismatchException.class, e -> {
          assertThat(e.tooNew()).isFalse();
          assertThat(e.minimum()).isEqualTo(2);
        });
  }

  @Test
  void unknownSubsectionWithOurPrefixFailsNamingIt() {
    byte[] withSub = save(V2, dev(1, 1, 0, 0, 9));
    VMStateDescription<Dev> noSubs =
        VMStateDescription.<Dev>builder("dev").version(2).minimumVersion(1)
            .uint32("a", o -> o.a, (o, v) -> o.a = v)
            .uint64("b", o -> o.b, (o, v) -> o.b = v)
            .int64("d", o -> o.d, (o, v) -> o.d = v).since(2)
            .build();
    assertThatThrownBy(() -> load(noSubs, withSub, new Dev(), 2))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("unknown subsection 'dev/sub'")
        .hasMessageContaining("offset 20");
  }

  @Test
  void subsectionOfAnotherPrefixEndsTheList() throws IOException {
    byte[] body = save(V1, dev(1, 2, 0, 0, 0));
    byte[] withForeign = new byte[body.length + 6];
    System.arraycopy(body, 0, withForeign, 0, body.length);
    withForeign[body.length] = 0x05;
    withForeign[body.length + 1] = 3;
    withForeign[body.length + 2] = 'x';
    MigrationInput in = MigrationInput.of(withForeign);
    V1.load(in, new Dev(), 1);
    assertThat(in.position()).isEqualTo(body.length);
  }

  @Test
  void subsectionVersionTooNewFails() {
    byte[] withSub = save(V2, dev(1, 1, 0, 0, 9));
    withSub[20 + 2 + 7 + 3] = 2; // be32 version of dev/sub
    assertThatThrownBy(() -> load(V2, withSub, new Dev(), 2))
        .isInstanceOf(VersionMismatchException.class)
        .hasMessageContaining("subsection 'dev/sub'");
  }

  @Test
  void errorsNameTheFieldPath() {
    byte[] withSub = save(V2, dev(1, 1, 0, 0, 9));
    byte[] truncated = java.util.Arrays.copyOf(withSub, withSub.length - 1);
    assertThatThrownBy(() -> load(V2, truncated, new Dev(), 2))
        .isInstanceOfSatisfying(MigrationStreamException.class,
            e -> assertThat(e.field()).isEqualTo("dev/sub.sub"));
  }

  @Test
  void postLoadFailureIsAStreamError() {
    VMStateDescription<Dev> strict =
        VMStateDescription.<Dev>builder("dev").version(1)
            .uint32("a", o -> o.a, (o, v) -> o.a = v)
            .uint64("b", o -> o.b, (o, v) -> o.b = v)
            .postLoad((o, v) -> {
              if (o.a > 100) {
                throw new IllegalArgumentException("a too big: " + o.a);
              }
            })
            .build();
    assertThatThrownBy(() -> load(strict, save(V1, dev(101, 0, 0, 0, 0)), new Dev(), 1))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("postLoad of 'dev' version 1")
        .hasMessageContaining("a too big: 101");
  }

  @Test
  void builderRejectsMistakes() {
    assertThatThrownBy(() -> VMStateDescription.<Dev>builder("dev").version(1)
            .subsection(VMStateDescription.<Dev>builder("other").version(1).build()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> VMStateDescription.<Dev>builder("dev").version(1)
            .int32VarArray("x", "n", 4, o -> null, (o, a) -> {}))
        .hasMessageContaining("declared earlier");
    assertThatThrownBy(() -> VMStateDescription.<Dev>builder("dev").version(1)
            .uint8("a", o -> 0, (o, v) -> {}).since(1).existsIf((o, v) -> true))
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> VMStateDescription.<Dev>builder("dev").version(1).minimumVersion(2)
            .build())
        .isInstanceOf(IllegalArgumentException.class);
  }
}
