package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.cli.FerryMain;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.testing.Captures;
import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import picocli.CommandLine;

@Timeout(120)
class AnalyzeCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final List<String> ANALYZABLE = Captures.ANALYZABLE;
  static final List<String> ALL = Captures.ALL;

  @TempDir Path tmp;

  record Run(int exit, String out, String err) {}

  static Run ferry(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(new FerryMain());
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int exit = cl.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  private Path gz(String capture) throws IOException {
    Path p = tmp.resolve(capture + ".mig.gz");
    if (!Files.exists(p)) {
      Files.write(p, Captures.bytes(capture, "mig.gz"));
    }
    return p;
  }

  @ParameterizedTest
  @FieldSource("ANALYZABLE")
  void dumpStateEqualsQemuAnalyzer(String capture) throws IOException {
    Run r = ferry("analyze", gz(capture).toString(), "--dump", "state");
    assertThat(r.err()).isEmpty();
    assertThat(r.exit()).isZero();
    assertThat(JSON.readTree(r.out())).isEqualTo(JSON.readTree(Captures.text(capture, "state.json")));
    // and line for line, as Python prints it
    assertThat(r.out()).isEqualTo(Captures.text(capture, "state.json"));
  }

  @ParameterizedTest
  @FieldSource("ALL")
  void dumpDescEqualsQemuAnalyzer(String capture) throws IOException {
    Run r = ferry("analyze", gz(capture).toString(), "--dump", "desc");
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(JSON.readTree(r.out())).isEqualTo(JSON.readTree(Captures.text(capture, "desc.json")));
  }

  @ParameterizedTest
  @FieldSource("ANALYZABLE")
  void extractMatchesRamblockHashes(String capture) throws Exception {
    Path dir = tmp.resolve("x-" + capture);
    Run r = ferry("analyze", gz(capture).toString(), "--extract", dir.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    Map<String, String> expected = new LinkedHashMap<>();
    for (String line : Captures.text(capture, "ramblocks.sha256").split("\n")) {
      String[] p = line.trim().split("\\s+", 2);
      expected.put(p[1], p[0]);
    }
    Map<String, String> actual = new LinkedHashMap<>();
    for (String name : expected.keySet()) {
      actual.put(name, sha256(Files.readAllBytes(dir.resolve(name))));
    }
    assertThat(actual).isEqualTo(expected);
    assertThat(JSON.readTree(dir.resolve("desc.json").toFile())).isEqualTo(JSON.readTree(Captures.text(capture, "desc.json")));
    assertThat(JSON.readTree(dir.resolve("state.json").toFile())).isEqualTo(JSON.readTree(Captures.text(capture, "state.json")));
  }

  static final List<String> BLOCK = Captures.BLOCK;

  /**
   * QEMU's analyzer fails on block migration streams; Ferry's decodes the {@code block} sections and
   * extracts each device's image as the stream carries it, which hashes as the capture's
   * disks.sha256 (and the RAM blocks still extract).
   */
  @ParameterizedTest
  @FieldSource("BLOCK")
  void blockCaptureDecodesAndExtractsTheDisk(String capture) throws Exception {
    Run list = ferry("analyze", gz(capture).toString());
    assertThat(list.exit()).as(list.err()).isZero();
    boolean zero = capture.endsWith("-zero");
    assertThat(list.out())
        .contains("START    'block' instance 0 (id ", "PART     'block' instance 0", "END      'block' instance 0")
        .contains("chunk 'drive0' 0x0 data", "progress 100%")
        .contains(zero ? "disk 'drive0': 3145728 bytes as carried, 2 data chunks, 1 zero chunks"
            : "disk 'drive0': 3145728 bytes as carried, 3 data chunks, 0 zero chunks");
    if (zero) {
      assertThat(list.out()).contains("chunk 'drive0' 0x100000 zero");
    }
    Path dir = tmp.resolve("x-" + capture);
    Run r = ferry("analyze", gz(capture).toString(), "--extract", dir.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    for (String line : Captures.text(capture, "disks.sha256").split("\n")) {
      String[] p = line.trim().split("\\s+", 2);
      assertThat(sha256(Files.readAllBytes(dir.resolve(p[1])))).as(p[1]).isEqualTo(p[0]);
    }
    assertThat(r.out()).contains("disk-drive0.raw");
    assertThat(JSON.readTree(dir.resolve("desc.json").toFile())).isEqualTo(JSON.readTree(Captures.text(capture, "desc.json")));
  }

  @Test
  void listingShowsCommandsAndRam() throws IOException {
    Run r = ferry("analyze", gz("pc-256M-postcopy-advise").toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out())
        .contains("COMMAND  OPEN_RETURN_PATH", "COMMAND  PING 1", "POSTCOPY_ADVISE host page sizes 0x1000, target page size 0x1000")
        .contains("FULL     'timer' instance 0 (id 0) v2")
        .contains("RAM: 6 blocks, 268967936 bytes, 3 chunks; pages: 65555 zero, 111 normal");
  }

  @Test
  void streamWithoutVmdescListsSectionsByFooter() throws IOException {
    byte[] s = Captures.stream("pc-256M");
    int vmdescAt = s.length - 5 - vmdescText(s).getBytes(StandardCharsets.ISO_8859_1).length;
    assertThat(s[vmdescAt]).isEqualTo((byte) 6);
    Path f = tmp.resolve("novmdesc.mig");
    Files.write(f, java.util.Arrays.copyOf(s, vmdescAt));
    Run r = ferry("analyze", f.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out()).contains("no vmdesc").contains("'globalstate' instance 0 (id 40) v1  body 104 bytes")
        .contains("'cpu' instance 0 (id 5) v12");
    Run st = ferry("analyze", f.toString(), "--dump", "state");
    assertThat(st.exit()).isEqualTo(1);
    assertThat(st.err()).startsWith("ferry analyze: no vmdesc found");
  }

  /**
   * The XBZRLE capture has no analyzer output: its RAM after decoding (deltas applied across 24
   * iterations) must hash to the value pinned when it was first decoded.
   */
  @Test
  void xbzrleCaptureDecodes() throws Exception {
    byte[] s = Captures.stream("pc-256M-dirty-xbzrle");
    try (StreamAnalyzer a = analyzer(s)) {
      a.analyze(MigrationInput.of(s), StreamReader.Options.DEFAULT);
      assertThat(a.ramStats().xbzrlePages()).isEqualTo(171715);
      assertThat(a.ramStats().normalPages()).isEqualTo(72832); // QEMU's query-migrate "normal"
      assertThat(a.ramStats().zeroPages()).isEqualTo(1031); // and "duplicate"
      String h = ramHash(a.ramBlocks());
      System.out.println("xbzrle RAM sha256 " + h);
      assertThat(h).isEqualTo(PINNED_XBZRLE);
    }
  }

  private static final String PINNED_XBZRLE =
      "ab8796c110f6df1eaeae0d82acd8349150eebd369ddcd987af22f0bfe554a35a";

  /** RAM and device decoding with one byte per read and random short reads. */
  @Test
  void fragmentedInputGivesTheSameResult() throws Exception {
    byte[] s = Captures.stream("pc-256M-run");
    String state;
    String ram;
    try (StreamAnalyzer a = analyzer(s)) {
      a.analyze(MigrationInput.of(s), StreamReader.Options.DEFAULT);
      state = a.state().toString();
      ram = ramHash(a.ramBlocks());
    }
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    System.out.println("fragmentedInputGivesTheSameResult seed " + seed);
    for (MigrationInput in : List.of(
        new MigrationInput(FragmentingChannel.oneByteAtATime(s)),
        new MigrationInput(FragmentingChannel.randomShortReads(s, seed, 9000)))) {
      try (StreamAnalyzer a = analyzer(s)) {
        a.analyze(in, StreamReader.Options.DEFAULT);
        assertThat(a.state().toString()).isEqualTo(state);
        assertThat(ramHash(a.ramBlocks())).isEqualTo(ram);
      }
    }
  }

  private static StreamAnalyzer analyzer(byte[] s) throws IOException {
    JsonNode vmdesc = JSON.readTree(vmdescText(s));
    return new StreamAnalyzer(vmdesc, s.length, true, 1L << 40);
  }

  private static String vmdescText(byte[] s) {
    int nul = s.length - 1;
    while (s[nul] != 0) {
      nul--;
    }
    int brace = nul;
    while (s[brace] != '{') {
      brace++;
    }
    return new String(s, brace, s.length - brace, StandardCharsets.UTF_8);
  }

  private static String ramHash(List<RamBlock> blocks) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    for (RamBlock b : blocks) {
      md.update(b.name().getBytes(StandardCharsets.UTF_8));
      md.update(b.memory().asByteBuffer());
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }

  // ---------------------------------------------------------------- corruption table

  /** A row: what is done to the stream, the options, and the message fragment expected. */
  record Row(String name, byte[] stream, String fragment, String... args) {}

  private static int indexOf(byte[] s, byte[] pat, int from) {
    outer:
    for (int i = from; i <= s.length - pat.length; i++) {
      for (int j = 0; j < pat.length; j++) {
        if (s[i + j] != pat[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new IllegalStateException("pattern not found");
  }

  private static byte[] with(byte[] s, int at, int xor) {
    byte[] c = s.clone();
    c[at] ^= (byte) xor;
    return c;
  }

  private static byte[] set(byte[] s, int at, byte... v) {
    byte[] c = s.clone();
    System.arraycopy(v, 0, c, at, v.length);
    return c;
  }

  /** A small synthetic stream: header, config, FULL 'dev' (body), footer, EOF, vmdesc. */
  private static byte[] synthetic(byte[] before, byte[] body, String vmdesc) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput o = new MigrationOutput(Channels.newChannel(bytes));
    o.writeBe32(0x5145564D).writeBe32(3).writeU8(7).writeBe32(3).writeBytes("pc1".getBytes(StandardCharsets.US_ASCII));
    o.writeBytes(before);
    o.writeU8(4).writeBe32(9).writeCountedString("dev").writeBe32(0).writeBe32(1);
    o.writeBytes(body);
    o.writeU8(0x7E).writeBe32(9).writeU8(0);
    byte[] j = vmdesc.getBytes(StandardCharsets.US_ASCII);
    o.writeU8(6).writeBe32(j.length).writeBytes(j);
    o.flush();
    return bytes.toByteArray();
  }

  private static String dev(String fields) {
    return "{\"page_size\": 4096, \"devices\": [{\"name\": \"dev\", \"instance_id\": 0, \"vmsd_name\": \"dev\", \"version\": 1, \"fields\": ["
        + fields + "]}]}";
  }

  static List<Row> rows() throws IOException {
    byte[] s = Captures.stream("pc-256M");
    List<Row> rows = new ArrayList<>();
    int timer = indexOf(s, HexFormat.of().parseHex("04000000000574696d6572"), 0);
    int cpu = indexOf(s, "\u0003cpu\u0000".getBytes(StandardCharsets.ISO_8859_1), 0) - 5;
    int sub = indexOf(s, "cpu/".getBytes(StandardCharsets.ISO_8859_1), cpu);
    int part = indexOf(s, HexFormat.of().parseHex("0200000002"), 8);
    int start = indexOf(s, HexFormat.of().parseHex("01000000020372616d"), 8);
    rows.add(new Row("flipped magic", with(s, 0, 0x01), "not a migration stream: magic 0x5045564D", "--dump", "state"));
    rows.add(new Row("too-new stream version", set(s, 7, (byte) 4), "unsupported stream format version 4", "--dump", "state"));
    rows.add(new Row("flipped bit in a section idstr", with(s, timer + 6, 0x01),
        "no vmdesc entry describes this section (section 'uimer' instance 0, offset " + timer + ")", "--dump", "state"));
    rows.add(new Row("unknown section type", set(s, timer, (byte) 0x09), "unknown section type 0x09 (offset " + timer + ")", "--dump", "state"));
    rows.add(new Row("footer mismatch", with(s, timer + 19 + 24 + 4, 0x01),
        "section footer mismatch: expected id=0, actual=1 (section 'timer' instance 0, offset " + (timer + 19 + 24) + ")", "--dump", "state"));
    rows.add(new Row("too-new section version", set(s, timer + 18, (byte) 3),
        "version mismatch: section version 3, vmdesc version 2 (section 'timer' instance 0", "--dump", "state"));
    rows.add(new Row("unknown subsection", with(s, sub + 4, 0x20), "unknown subsection 'cpu/", "--dump", "state"));
    rows.add(new Row("flipped RAM record flag", with(s, part + 5 + 7, 0x01), "invalid RAM record flags", "--dump", "state"));
    rows.add(new Row("hostile RAM block list total", set(s, start + 17, (byte) 0x7F),
        "RAM block list total 0x7f00000010082000 bytes exceeds the limit 0x10000000000 (section 'ram' instance 0, offset " + (start + 17) + ")", "--dump", "state"));
    rows.add(new Row("hostile RAM block size", set(s, start + 25 + 7 + 3, (byte) 0x7F),
        "RAM block 'pc.ram' length 0x7f10000000 exceeds what is left of the list total (0x10082000 of 0x10082000)", "--dump", "state"));
    rows.add(new Row("hostile vmdesc array count",
        synthetic(new byte[0], new byte[8], dev("{\"name\": \"x\", \"array_len\": 1000000000, \"type\": \"uint32\", \"size\": 4}")),
        "vmdesc array 'x' of 1000000000 x 4 bytes runs past the end of the stream", "--dump", "state"));
    rows.add(new Row("hostile vmdesc field size",
        synthetic(new byte[0], new byte[8], dev("{\"name\": \"s\", \"type\": \"buffer\", \"size\": 4000000000}")),
        "vmdesc field size 4000000000 exceeds", "--dump", "state"));
    rows.add(new Row("hostile PACKAGED length beyond the limit",
        synthetic(HexFormat.of().parseHex("0800070004fffffff0"), new byte[0], dev("")),
        "PACKAGED length 4294967280 exceeds the limit", "--dump", "state"));
    rows.add(new Row("hostile PACKAGED length beyond the file",
        synthetic(HexFormat.of().parseHex("08000700040fffff00"), new byte[0], dev("")),
        "unexpected end of stream", "--dump", "state"));
    rows.add(new Row("unknown command", synthetic(HexFormat.of().parseHex("08000b0000"), new byte[0], dev("")),
        "unknown command 11", "--dump", "state"));
    // truncation: everything before the vmdesc cut at many places (the vmdesc is then gone too)
    int eof = s.length - 5 - vmdescText(s).length();
    for (int cut : new int[] {0, 3, 7, 9, 20, start + 3, start + 20, part + 2, part + 5000, timer + 1, timer + 20, cpu + 100, eof - 60, eof - 1}) {
      rows.add(new Row("truncated at " + cut, java.util.Arrays.copyOf(s, cut), "(unexpected end of stream|file too short|cannot find the end)"));
    }
    // truncated inside the vmdesc: the tail search finds nothing, the walk fails at the cut
    rows.add(new Row("truncated in the vmdesc", java.util.Arrays.copyOf(s, s.length - 10), "unexpected end of stream"));
    return rows;
  }

  @TestFactory
  Stream<DynamicTest> corruptionTable() throws IOException {
    return rows().stream().map(row -> DynamicTest.dynamicTest(row.name(), () -> {
      Path f = tmp.resolve("bad.mig");
      Files.write(f, row.stream());
      String[] args = Stream.concat(Stream.of("analyze", f.toString()), Stream.of(row.args())).toArray(String[]::new);
      Run r = ferry(args);
      assertThat(r.exit()).as(row.name() + ": " + r.err()).isEqualTo(1);
      String err = r.err().strip();
      assertThat(err).as(row.name()).doesNotContain("\n").startsWith("ferry analyze: ");
      assertThat(err).as(row.name()).containsPattern(row.fragment().startsWith("(") ? row.fragment() : java.util.regex.Pattern.quote(row.fragment()));
      assertThat(r.out() + r.err()).doesNotContain("\tat ");
    }));
  }

  @Test
  void verbosePrintsTheStackTrace() throws IOException {
    Path f = tmp.resolve("bad.mig");
    Files.write(f, java.util.Arrays.copyOf(Captures.stream("pc-256M"), 100));
    Run r = ferry("analyze", f.toString(), "--verbose");
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).startsWith("ferry analyze: ").contains("\tat ");
  }

  @Test
  void badOptionsAndMissingFile() {
    assertThat(ferry("analyze", tmp.resolve("nope").toString()).err())
        .isEqualTo("ferry analyze: " + tmp.resolve("nope") + ": No such file or directory\n");
    Run r = ferry("analyze", tmp.resolve("nope").toString(), "--dump", "everything");
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).contains("--dump must be 'state' or 'desc'");
  }
}
