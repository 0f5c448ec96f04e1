package dev.ferry.kv.resp;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RespReaderTest {
  private static final long SEED = Long.getLong("ferry.seed", 42);

  static byte[] multibulk(byte[]... args) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.writeBytes(("*" + args.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
    for (byte[] a : args) {
      b.writeBytes(("$" + a.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
      b.writeBytes(a);
      b.writeBytes(new byte[] {'\r', '\n'});
    }
    return b.toByteArray();
  }

  static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  static List<RespRequest> readAll(RespReader r) {
    List<RespRequest> out = new ArrayList<>();
    for (RespRequest q = r.next(); q != null; q = r.next()) {
      out.add(q);
    }
    return out;
  }

  static List<String> render(List<RespRequest> requests) {
    List<String> out = new ArrayList<>();
    for (RespRequest q : requests) {
      out.add(switch (q) {
        case RespRequest.Command c -> String.join("|", c.args().stream().map(a -> new String(a, StandardCharsets.ISO_8859_1)).toList());
        case RespRequest.ProtocolError e -> "ERROR " + e.message();
      });
    }
    return out;
  }

  /** A command whose arguments are random bytes of random lengths (CR, LF, NUL, '*' and '$' included). */
  static byte[][] randomCommand(Random rnd) {
    byte[][] args = new byte[1 + rnd.nextInt(5)][];
    for (int i = 0; i < args.length; i++) {
      args[i] = new byte[rnd.nextInt(i == 0 ? 8 : 300) + (i == 0 ? 1 : 0)];
      rnd.nextBytes(args[i]);
    }
    return args;
  }

  @Test
  void roundTripOfRandomBinaryCommandsWholeAndInRandomPieces() {
    Random rnd = new Random(SEED);
    List<byte[][]> commands = new ArrayList<>();
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    for (int i = 0; i < 500; i++) {
      byte[][] c = randomCommand(rnd);
      commands.add(c);
      wire.writeBytes(multibulk(c));
    }
    byte[] bytes = wire.toByteArray();
    for (int mode = 0; mode < 3; mode++) {
      RespReader r = new RespReader();
      List<RespRequest> got = new ArrayList<>();
      int pos = 0;
      while (pos < bytes.length) {
        int n = switch (mode) {
          case 0 -> bytes.length; // all at once
          case 1 -> 1; // one byte at a time
          default -> 1 + rnd.nextInt(700); // random short reads
        };
        n = Math.min(n, bytes.length - pos);
        r.feed(bytes, pos, n);
        pos += n;
        got.addAll(readAll(r));
      }
      assertThat(got).as("mode %d, seed %d", mode, SEED).hasSize(commands.size());
      for (int i = 0; i < got.size(); i++) {
        RespRequest.Command c = (RespRequest.Command) got.get(i);
        assertThat(c.args()).as("command %d mode %d seed %d", i, mode, SEED).hasSize(commands.get(i).length);
        for (int j = 0; j < c.args().size(); j++) {
          assertThat(c.args().get(j)).isEqualTo(commands.get(i)[j]);
        }
      }
      assertThat(r.buffered()).isZero();
    }
  }

  @Test
  void binaryKeysAreExactBytes() {
    byte[] key = {0, '\r', '\n', '*', '$', (byte) 0xff, ' ', '"'};
    RespReader r = new RespReader();
    r.feed(multibulk(ascii("SET"), key, new byte[0]));
    RespRequest.Command c = (RespRequest.Command) r.next();
    assertThat(c.args().get(1)).isEqualTo(key);
    assertThat(c.args().get(2)).isEmpty();
    assertThat(c.name()).isEqualTo("set");
  }

  @Test
  void inlineCommandsWithRedisQuoting() {
    RespReader r = new RespReader();
    r.feed(ascii("PING\r\nset \"a b\\x41\\n\" 'it\\'s'\n\r\n   \r\nGET k\r\n"));
    assertThat(render(readAll(r))).containsExactly("PING", "set|a bA\n|it's", "GET|k");
  }

  @Test
  void badInputIsOneClearErrorAndTheNextRequestStillWorks() {
    String ping = "*1\r\n$4\r\nPING\r\n";
    record Case(String input, String error) {}
    List<Case> cases = List.of(
        new Case("*2\r\n$3\r\nGET\r\n$-3\r\nabc\r\n", "Protocol error: invalid bulk length"),
        new Case("*1\r\n$x1\r\nA\r\n", "Protocol error: invalid bulk length"),
        new Case("*abc\r\n", "Protocol error: invalid multibulk length"),
        new Case("*99999999\r\n", "Protocol error: invalid multibulk length"),
        new Case("*2\r\n+GET\r\n", "Protocol error: expected '$', got '+'"),
        // a key whose bytes do not match its length (more bytes than declared): not binary safe
        new Case("*2\r\n$3\r\nGET\r\n$3\r\nkey\0extra\r\n", "Protocol error: bulk string of 3 bytes not followed by CRLF"),
        new Case("GET \"unterminated\r\n", "Protocol error: unbalanced quotes in request"),
        new Case("GET \"a\"b\r\n", "Protocol error: unbalanced quotes in request"));
    for (Case c : cases) {
      RespReader r = new RespReader();
      r.feed(ascii(c.input + ping));
      List<String> got = render(readAll(r));
      assertThat(got).as(c.input).hasSize(2);
      assertThat(got.get(0)).as(c.input).startsWith("ERROR " + c.error);
      assertThat(got.get(1)).as(c.input).isEqualTo("PING");
    }
  }

  @Test
  void overLongBulkIsRefusedAtOnceAndSkippedWithoutBeingBuffered() {
    RespReader r = new RespReader(1024, 4096);
    r.feed(ascii("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n"));
    List<String> got = render(readAll(r));
    assertThat(got).containsExactly("ERROR Protocol error: invalid bulk length"); // before the payload came
    byte[] chunk = new byte[1000];
    for (int i = 0; i < 100; i++) {
      java.util.Arrays.fill(chunk, (byte) '\n');
      r.feed(chunk);
      assertThat(readAll(r)).isEmpty();
      assertThat(r.buffered()).isLessThan(2048);
    }
    r.feed(ascii("\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"));
    assertThat(render(readAll(r))).containsExactly("ECHO|hi");
  }

  @Test
  void requestWhoseArgumentsTogetherAreTooBigIsRefused() {
    RespReader r = new RespReader(1024, 2048);
    byte[] v = new byte[1000];
    r.feed(multibulk(ascii("MSET"), ascii("a"), v, ascii("b"), v, ascii("c"), v));
    r.feed(ascii("*1\r\n$4\r\nPING\r\n"));
    List<String> got = render(readAll(r));
    assertThat(got).hasSize(2);
    assertThat(got.get(0)).startsWith("ERROR Protocol error: too big request");
    assertThat(got.get(1)).isEqualTo("PING");
  }

  @Test
  void overLongLinesAreRefused() {
    RespReader r = new RespReader();
    byte[] line = new byte[RespReader.MAX_LINE_BYTES + 10];
    java.util.Arrays.fill(line, (byte) 'a');
    r.feed(line);
    assertThat(render(readAll(r))).containsExactly("ERROR Protocol error: too big inline request");
    r.feed(ascii("aaaa\r\nPING\r\n"));
    assertThat(render(readAll(r))).containsExactly("PING");

    RespReader m = new RespReader();
    m.feed(ascii("*"));
    java.util.Arrays.fill(line, (byte) '1');
    m.feed(line);
    assertThat(render(readAll(m))).containsExactly("ERROR Protocol error: too big mbulk count string");
  }

  @Test
  void emptyAndNullMultibulksAreSkippedAsRedisDoes() {
    RespReader r = new RespReader();
    r.feed(ascii("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"));
    assertThat(render(readAll(r))).containsExactly("PING");
  }

  @Test
  void corruptedStreamsNeverHangOrThrow() {
    Random rnd = new Random(SEED);
    for (int round = 0; round < 300; round++) {
      ByteArrayOutputStream wire = new ByteArrayOutputStream();
      for (int i = 0; i < 5; i++) {
        wire.writeBytes(multibulk(randomCommand(rnd)));
      }
      byte[] b = wire.toByteArray();
      switch (rnd.nextInt(3)) {
        case 0 -> b[rnd.nextInt(b.length)] ^= (byte) (1 << rnd.nextInt(8)); // flip a bit
        case 1 -> b = java.util.Arrays.copyOf(b, rnd.nextInt(b.length)); // truncate
        default -> java.util.Arrays.fill(b, rnd.nextInt(b.length / 2), b.length / 2 + rnd.nextInt(b.length / 2), (byte) 0); // zero a range
      }
      RespReader r = new RespReader(4096, 8192);
      r.feed(b);
      int n = readAll(r).size();
      assertThat(n).as("round %d seed %d", round, SEED).isLessThanOrEqualTo(5 + b.length);
      // whatever state the garbage left (a bulk string or a skip under way, a resync), newlines
      // end it and the next clean request gets through
      byte[] newlines = new byte[10_000];
      java.util.Arrays.fill(newlines, (byte) '\n');
      r.feed(newlines);
      r.feed(ascii("*1\r\n$4\r\nPING\r\n"));
      List<String> tail = render(readAll(r));
      assertThat(tail).as("round %d seed %d", round, SEED).isNotEmpty();
      assertThat(tail.getLast()).as("round %d seed %d", round, SEED).isEqualTo("PING");
      assertThat(r.buffered()).isZero();
    }
  }
}
