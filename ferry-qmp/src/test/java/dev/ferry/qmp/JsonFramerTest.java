package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class JsonFramerTest {
  final List<String> msgs = new ArrayList<>();
  final List<String> errors = new ArrayList<>();
  final JsonFramer framer =
      new JsonFramer(4096, JsonFramer.sink(b -> msgs.add(new String(b, StandardCharsets.UTF_8)), errors::add));

  void feed(String s) {
    framer.feed(ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void cutsAtBalancedBracesOutsideStrings() {
    feed("{\"a\": \"}{\\\"\"}[1,[2]] {\"b\":{}}\n  true ");
    assertThat(msgs).containsExactly("{\"a\": \"}{\\\"\"}", "[1,[2]]", "{\"b\":{}}", "true");
    assertThat(errors).isEmpty();
  }

  @Test
  void randomSplitsGiveTheSameMessages() {
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    System.out.println("JsonFramerTest seed " + seed + " (rerun with -Dferry.seed=" + seed + ")");
    Random r = new Random(seed);
    String all = "{\"execute\": \"x\", \"arguments\": {\"s\": \"a}b\\\\\"}}{\"execute\":\"y\"}\r\n";
    for (int round = 0; round < 200; round++) {
      msgs.clear();
      int i = 0;
      while (i < all.length()) {
        int n = 1 + r.nextInt(Math.min(7, all.length() - i));
        feed(all.substring(i, i + n));
        i += n;
      }
      assertThat(msgs).containsExactly("{\"execute\": \"x\", \"arguments\": {\"s\": \"a}b\\\\\"}}", "{\"execute\":\"y\"}");
    }
  }

  @Test
  void strayCloserAndOversizeAreErrorsThenFramingResumes() {
    feed("]");
    feed("{\"x\": \"" + "a".repeat(5000) + "\"}\n");
    feed("{\"ok\":1}");
    assertThat(errors).containsExactly("expecting value", "message longer than 4096 bytes");
    assertThat(msgs).containsExactly("{\"ok\":1}");
    feed("[".repeat(QmpJson.MAX_NESTING + 1) + "\n{\"ok\":2}");
    assertThat(errors).hasSize(3).last().isEqualTo("nesting too deep");
    assertThat(msgs).last().isEqualTo("{\"ok\":2}");
  }

  @Test
  void writerEscapesAsQemuDoes() {
    var o = RawQmpClient.M.createObjectNode().put("a", "x/y\n\u00e9").put("n", 3).put("d", 268.44);
    o.putArray("l").add(1).add(true);
    // QEMU 7.2's JSON writer: "/" as is, upper-case hex
    assertThat(QmpJson.write(o)).isEqualTo("{\"a\": \"x/y\\n\\u00E9\", \"n\": 3, \"d\": 268.44, \"l\": [1, true]}");
  }
}
