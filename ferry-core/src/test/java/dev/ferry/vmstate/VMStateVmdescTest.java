package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import static dev.ferry.vmstate.VMStateTesting.save;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The vmdesc rules of spec 7.3 that the captures do not exercise. */
class VMStateVmdescTest {
  static final class Box {
    int[] arr = {1, 2};
    long n;
    int[] empty = new int[0];
    List<Box2> kids = new ArrayList<>(List.of(new Box2(), new Box2()));
  }

  static final class Box2 {
    long x;
    boolean sub = true;
  }

  static final VMStateDescription<Box2> KID =
      VMStateDescription.<Box2>builder("kid")
          .version(1)
          .uint8("x", k -> k.x, (k, v) -> k.x = v)
          .subsection(VMStateDescription.<Box2>builder("kid/s").version(1).needed(k -> k.sub)
              .bool("sub", k -> k.sub, (k, v) -> k.sub = v).build())
          .build();

  @Test
  void existsTestedArraysAndStructsWithSubsectionsAreListedPerIndex() {
    VMStateDescription<Box> d =
        VMStateDescription.<Box>builder("box")
            .version(1)
            .int32Array("arr", 2, b -> b.arr)
            .existsIf((b, v) -> true)
            .uint8("n", b -> b.n, (b, v) -> b.n = v)
            .int32VarArray("empty", "n", 4, b -> b.empty, (b, a) -> b.empty = a)
            .structArray("kids", 2, KID, b -> b.kids)
            .build();
    QemuJsonWriter w = new QemuJsonWriter();
    byte[] bytes = save(d, new Box(), w);
    String kid = "{\"vmsd_name\": \"kid\", \"version\": 1, \"fields\": [{\"name\": \"x\", \"type\": "
        + "\"uint8\", \"size\": 1}], \"subsections\": [{\"vmsd_name\": \"kid/s\", \"version\": 1, "
        + "\"fields\": [{\"name\": \"sub\", \"type\": \"bool\", \"size\": 1}]}]}";
    assertThat(w.toString())
        .isEqualTo("{\"vmsd_name\": \"box\", \"version\": 1, \"fields\": ["
            + "{\"name\": \"arr\", \"index\": 0, \"type\": \"int32\", \"size\": 4}, "
            + "{\"name\": \"arr\", \"index\": 1, \"type\": \"int32\", \"size\": 4}, "
            + "{\"name\": \"n\", \"type\": \"uint8\", \"size\": 1}, "
            + "{\"name\": \"kids\", \"index\": 0, \"type\": \"struct\", \"struct\": " + kid
            + ", \"size\": 13}, "
            + "{\"name\": \"kids\", \"index\": 1, \"type\": \"struct\", \"struct\": " + kid
            + ", \"size\": 13}]}");
    assertThat(bytes).hasSize(8 + 1 + 13 + 13);
  }

  @Test
  void descriptionSizesAddUpToTheBytesWritten() {
    QemuJsonWriter w = new QemuJsonWriter();
    AllKinds o = AllKinds.random(new java.util.Random(5));
    o.subValue = 3;
    byte[] bytes = save(AllKinds.VMSD, o, w);
    // sum the top-level "size" values plus each subsection header (1 + 1 + 7 + 4)
    long total = 0;
    String json = w.toString();
    int depth = 0;
    int objStart = 0;
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      if (c == '{' || c == '[') {
        depth++;
        if (depth == 3) {
          objStart = i;
        }
      } else if (c == '}' || c == ']') {
        depth--;
      } else if (depth == 3 && json.startsWith("\"size\": ", i)) {
        int j = i + 8;
        int k = j;
        while (Character.isDigit(json.charAt(k))) {
          k++;
        }
        long size = Long.parseLong(json.substring(j, k));
        int arr = json.indexOf("\"array_len\": ", objStart);
        if (arr >= 0 && arr < json.indexOf("\"type\"", objStart)) {
          int e = json.indexOf(',', arr);
          size *= Long.parseLong(json.substring(arr + 13, e));
        }
        total += size;
      }
    }
    assertThat(total + 13 + 8).isEqualTo(bytes.length);
  }
}
