package dev.ferry.savevm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.VersionMismatchException;
import dev.ferry.testing.Captures;
import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.Random;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class StreamFramingTest {

  /** A live handler whose chunks are be32 n + n bytes of a counter; iterates {@code rounds} times. */
  static final class CounterLive implements LiveStateHandler {
    final int rounds;
    int sent;
    final List<Integer> received = new ArrayList<>();
    final List<SectionType> types = new ArrayList<>();

    CounterLive(int rounds) {
      this.rounds = rounds;
    }

    @Override public String idstr() { return "counter"; }
    @Override public int instanceId() { return 0; }
    @Override public int version() { return 1; }

    private void chunk(MigrationOutput out) throws IOException {
      out.writeBe32(sent);
      out.writeBytes(new byte[sent % 7]);
      sent++;
    }

    @Override public void saveSetup(MigrationOutput out) throws IOException { chunk(out); }

    @Override
    public boolean saveIterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
      chunk(out);
      return sent > rounds;
    }

    @Override public void saveComplete(MigrationOutput out) throws IOException { chunk(out); }
    @Override public long pendingEstimateBytes() { return Math.max(0, rounds - sent) * 8L; }
    @Override public long pendingExactBytes() { return pendingEstimateBytes(); }

    @Override
    public void load(MigrationInput in, int version, SectionType type) throws IOException {
      int v = in.readBe32();
      in.skip(v % 7);
      received.add(v);
      types.add(type);
    }
  }

  static final class Box {
    long a;
    String text = "";
  }

  static LegacySaveStateEntry legacy(String name, Box box) {
    return LegacySaveStateEntry.of(
        name, 0, 2,
        out -> out.writeBe64(box.a).writeCountedString(box.text),
        (in, version) -> {
          box.a = in.readBe64();
          box.text = in.readCountedString();
        });
  }

  static byte[] saveSample(SaveStateRegistry reg, Configuration cfg, boolean commands) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    StateSaver s = new StateSaver(reg, new StreamWriter(out));
    s.begin(cfg);
    if (commands) {
      s.writer().writeCommand(new StreamCommand.OpenReturnPath());
      s.writer().writeCommand(new StreamCommand.Ping(1));
      s.writer().writeCommand(new StreamCommand.PostcopyAdvise(0x1000, 0x1000));
    }
    s.setupLive();
    while (!s.iterateLive(() -> false)) {
      // iterate
    }
    s.completeLive();
    s.saveDevices();
    s.finish(true);
    return bytes.toByteArray();
  }

  /** What a load tells {@link PerLoadLive}. */
  record Tag(String name) {}

  /** A live handler holding nothing of a load: each load's chunks land in the load's own object. */
  static final class PerLoadLive implements LiveStateHandler {
    final List<Load> opened = new ArrayList<>();

    final class Load implements LiveLoad {
      final String tag;
      final List<Integer> received = new ArrayList<>();
      boolean closed;

      Load(String tag) {
        this.tag = tag;
      }

      @Override
      public void load(MigrationInput in, int version, SectionType type) throws IOException {
        int v = in.readBe32();
        in.skip(v % 7);
        received.add(v);
      }

      @Override
      public void close() {
        closed = true;
      }
    }

    @Override public String idstr() { return "counter"; }
    @Override public int instanceId() { return 0; }
    @Override public int version() { return 1; }

    @Override
    public LiveLoad openLoad(SaveOptions options) {
      Load l = new Load(options.get(Tag.class, new Tag("none")).name());
      opened.add(l);
      return l;
    }
  }

  @Test
  void eachLoadOpensItsOwnLiveStateWithItsOptionsAndClosesIt() throws IOException {
    SaveStateRegistry src = new SaveStateRegistry();
    src.register(new CounterLive(2));
    Configuration cfg = Configuration.of("m");
    byte[] stream = saveSample(src, cfg, false);
    PerLoadLive live = new PerLoadLive();
    SaveStateRegistry reg = new SaveStateRegistry();
    reg.register(live);
    StateLoader first = StateLoader.load(reg, MigrationInput.of(stream), StreamReader.Options.DEFAULT, cfg, List.of(),
        SaveOptions.of(new Tag("first")), CommandListener.NONE);
    assertThatThrownBy(() -> StateLoader.load(reg, MigrationInput.of(Arrays.copyOf(stream, stream.length / 2)),
        StreamReader.Options.DEFAULT, cfg, List.of(), SaveOptions.of(new Tag("broken")), CommandListener.NONE))
        .isInstanceOf(IOException.class);
    StateLoader.load(reg, MigrationInput.of(stream), StreamReader.Options.DEFAULT, cfg, List.of(),
        SaveOptions.of(new Tag("third")), CommandListener.NONE);
    assertThat(live.opened).extracting(l -> l.tag).containsExactly("first", "broken", "third");
    assertThat(live.opened).allMatch(l -> l.closed, "closed, the failed load's too");
    assertThat(live.opened.get(0).received).containsExactly(0, 1, 2, 3);
    assertThat(live.opened.get(2).received).containsExactly(0, 1, 2, 3);
    assertThat(first.liveLoad("counter", PerLoadLive.Load.class)).isNull(); // closed loads are let go
  }

  @Test
  void roundTripThroughSaverAndLoader() throws IOException {
    Box a = new Box();
    a.a = 42;
    a.text = "hello";
    CounterLive live = new CounterLive(3);
    SaveStateRegistry src = new SaveStateRegistry();
    src.register(live);
    src.register(legacy("box", a));
    Configuration cfg = new Configuration("ferry-test", OptionalInt.empty(), List.of("x-ignore-shared"), new byte[16]);
    byte[] stream = saveSample(src, cfg, false);

    for (int mode = 0; mode < 3; mode++) {
      Box b = new Box();
      CounterLive dst = new CounterLive(0);
      SaveStateRegistry reg = new SaveStateRegistry();
      reg.register(dst);
      reg.register(legacy("box", b));
      MigrationInput in =
          switch (mode) {
            case 0 -> MigrationInput.of(stream);
            case 1 -> new MigrationInput(FragmentingChannel.oneByteAtATime(stream));
            default -> new MigrationInput(FragmentingChannel.randomShortReads(stream, 7, 9));
          };
      StateLoader loader = StateLoader.load(reg, in, StreamReader.Options.DEFAULT, cfg, CommandListener.NONE);
      assertThat(b.a).isEqualTo(42);
      assertThat(b.text).isEqualTo("hello");
      assertThat(dst.received).containsExactly(0, 1, 2, 3, 4);
      assertThat(dst.types).containsExactly(SectionType.START, SectionType.PART, SectionType.PART, SectionType.PART, SectionType.END);
      assertThat(loader.wasLoaded("box", 0)).isTrue();
      assertThat(loader.receivedConfiguration().capabilities()).containsExactly("x-ignore-shared");
    }
    String json = new String(stream, stream.length - 200, 200, java.nio.charset.StandardCharsets.US_ASCII);
    assertThat(json).contains("{\"name\": \"box\", \"instance_id\": 0, \"size\": 14, \"fields\": [{\"name\": \"data\", \"size\": 14, \"type\": \"buffer\"}]}");
  }

  @Test
  void goldenHeaderConfigurationAndCommandsMatchQemu() throws IOException {
    byte[] qemu = Captures.stream("pc-256M-postcopy-advise");
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    StreamWriter w = new StreamWriter(out);
    w.writeHeader();
    w.writeConfiguration(Configuration.of("pc-i440fx-7.2"));
    w.writeCommand(new StreamCommand.OpenReturnPath());
    w.writeCommand(new StreamCommand.Ping(1));
    w.writeCommand(new StreamCommand.PostcopyAdvise(0x1000, 0x1000));
    w.beginSection(SectionType.START, 2, "ram", 0, 4);
    out.flush();
    byte[] ours = bytes.toByteArray();
    assertThat(Arrays.copyOf(qemu, ours.length)).isEqualTo(ours);

    // and the reader sees the same records in QEMU's bytes
    List<Object> seen = new ArrayList<>();
    StreamHandler h =
        new StreamHandler() {
          @Override public void configuration(Configuration c, long off) { seen.add(c.machineType()); }
          @Override public void command(StreamCommand c, long off) { seen.add(c); }
          @Override public void section(SectionHeader hd, MigrationInput in) throws IOException {
            seen.add(hd.idstr() + "/" + hd.sectionId() + "/" + hd.version());
            throw new MigrationStreamException("stop here");
          }
        };
    StreamReader r = new StreamReader(MigrationInput.of(qemu), h);
    assertThatThrownBy(r::readAll).hasMessageContaining("stop here").hasMessageContaining("section 'ram' instance 0");
    assertThat(seen)
        .containsExactly(
            "pc-i440fx-7.2",
            new StreamCommand.OpenReturnPath(),
            new StreamCommand.Ping(1),
            new StreamCommand.PostcopyAdvise(0x1000, 0x1000),
            "ram/2/4");
  }

  @Test
  void everyCommandRoundTrips() throws IOException {
    List<StreamCommand> cmds =
        List.of(
            new StreamCommand.OpenReturnPath(),
            new StreamCommand.Ping(0xFFFFFFFFL),
            new StreamCommand.PostcopyAdvise(-1, -1),
            new StreamCommand.PostcopyAdvise(0x201000, 0x1000),
            new StreamCommand.RamDiscard("pc.ram", List.of(new StreamCommand.Range(0x2B55000, 0xD4AB000))),
            new StreamCommand.PostcopyListen(),
            new StreamCommand.EnableColo(),
            new StreamCommand.PostcopyResume(),
            new StreamCommand.RecvBitmap("pc.ram"),
            new StreamCommand.PostcopyRun());
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    StreamWriter w = new StreamWriter(new MigrationOutput(Channels.newChannel(bytes)));
    w.writeHeader();
    for (StreamCommand c : cmds) {
      w.writeCommand(c);
    }
    List<StreamCommand> seen = new ArrayList<>();
    StreamReader r =
        new StreamReader(
            MigrationInput.of(bytes.toByteArray()),
            new StreamHandler() {
              @Override public void section(SectionHeader h, MigrationInput in) {}
              @Override public void command(StreamCommand c, long off) { seen.add(c); }
            },
            StreamReader.Options.DEFAULT.withConfiguration(false));
    r.readHeader();
    assertThat(r.readSections()).isEqualTo(StreamReader.End.POSTCOPY_RUN);
    assertThat(seen).hasSize(cmds.size());
    for (int i = 0; i < cmds.size(); i++) {
      assertThat(seen.get(i).toString()).isEqualTo(cmds.get(i).toString());
    }
  }

  @Test
  void packagedBlobIsWalkedAsNestedStream() throws IOException {
    Box a = new Box();
    a.a = 7;
    SaveStateRegistry src = new SaveStateRegistry();
    src.register(legacy("box", a));
    ByteArrayOutputStream pkg = new ByteArrayOutputStream();
    StreamWriter inner = new StreamWriter(new MigrationOutput(Channels.newChannel(pkg)));
    StateSaver s = new StateSaver(src, inner);
    inner.writeCommand(new StreamCommand.PostcopyListen());
    s.saveDevices();
    inner.writeCommand(new StreamCommand.PostcopyRun());
    inner.flush();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    StreamWriter w = new StreamWriter(new MigrationOutput(Channels.newChannel(bytes)));
    w.writeHeader();
    w.writeConfiguration(Configuration.of("m"));
    w.writePackaged(pkg.toByteArray());
    w.writeEof();
    w.flush();

    Box b = new Box();
    SaveStateRegistry dst = new SaveStateRegistry();
    dst.register(legacy("box", b));
    List<String> cmds = new ArrayList<>();
    StateLoader loader = new StateLoader(dst, Configuration.of("m"), (c, off) -> cmds.add(c.command().name()));
    StreamReader r = new StreamReader(MigrationInput.of(bytes.toByteArray()), loader);
    assertThat(r.readAll()).isEqualTo(StreamReader.End.POSTCOPY_RUN);
    assertThat(b.a).isEqualTo(7);
    assertThat(cmds).containsExactly("PACKAGED", "POSTCOPY_LISTEN", "POSTCOPY_RUN");
  }

  @Test
  void strictChecksNameWhatAndWhere() throws IOException {
    Box a = new Box();
    SaveStateRegistry src = new SaveStateRegistry();
    src.register(new CounterLive(1));
    src.register(legacy("box", a));
    byte[] good = saveSample(src, Configuration.of("ferry-test"), false);

    // machine type must match exactly
    assertThatThrownBy(() -> load(good, Configuration.of("ferry-tes")))
        .hasMessageContaining("Machine type received is 'ferry-test' and local is 'ferry-tes'");
    // unknown device
    SaveStateRegistry onlyLive = new SaveStateRegistry();
    onlyLive.register(new CounterLive(0));
    assertThatThrownBy(() -> StateLoader.load(onlyLive, MigrationInput.of(good), StreamReader.Options.DEFAULT, null, CommandListener.NONE))
        .hasMessageContaining("no device 'box' instance 0");
    // too-new version: bump the box FULL header's version field
    byte[] tooNew = good.clone();
    int boxAt = indexOf(tooNew, new byte[] {4, 0, 0, 0, 1, 3, 'b', 'o', 'x'});
    tooNew[boxAt + 9 + 4 + 3] = 9;
    assertThatThrownBy(() -> load(tooNew, null))
        .isInstanceOf(VersionMismatchException.class)
        .hasMessageContaining("version 9 is too new")
        .hasMessageContaining("section 'box' instance 0");
    // footer mismatch
    byte[] footer = good.clone();
    int f = indexOf(footer, new byte[] {0x7E, 0, 0, 0, 1});
    footer[f + 4] = 9;
    assertThatThrownBy(() -> load(footer, null))
        .hasMessageContaining("section footer mismatch: expected id=1, actual=9")
        .hasMessageContaining("offset " + f);
    // unknown section type
    byte[] type = good.clone();
    type[boxAt] = 0x09;
    assertThatThrownBy(() -> load(type, null)).hasMessageContaining("unknown section type 0x09").hasMessageContaining("offset " + boxAt);
    type[boxAt] = 0x05;
    assertThatThrownBy(() -> load(type, null)).hasMessageContaining("section type SUBSECTION (0x05) is not allowed here");
    // every truncation fails cleanly (never a wrong success); only a cut right after EOF, which
    // drops just the vmdesc, still loads (as in QEMU)
    int vmdescAt = good.length - 5 - java.nio.ByteBuffer.wrap(good).getInt(good.length - 4 - jsonLength(good));
    load(Arrays.copyOf(good, vmdescAt), null);
    for (int cut = 0; cut < good.length; cut++) {
      if (cut == vmdescAt) {
        continue;
      }
      byte[] t = Arrays.copyOf(good, cut);
      assertThatThrownBy(() -> load(t, null)).isInstanceOf(MigrationStreamException.class);
    }
  }

  @Test
  void randomBitFlipsNeverEscapeAsOtherExceptions() throws IOException {
    long seed = Long.getLong("ferry.seed", System.nanoTime());
    System.out.println("randomBitFlips seed " + seed);
    Random rnd = new Random(seed);
    SaveStateRegistry src = new SaveStateRegistry();
    src.register(new CounterLive(2));
    src.register(legacy("box", new Box()));
    byte[] good = saveSample(src, Configuration.of("ferry-test"), true);
    for (int i = 0; i < 2000; i++) {
      byte[] bad = good.clone();
      int at = rnd.nextInt(bad.length);
      bad[at] ^= (byte) (1 << rnd.nextInt(8));
      try {
        load(bad, null);
      } catch (MigrationStreamException expected) {
        // fine: a clean error
      }
    }
  }

  private static void load(byte[] stream, Configuration expected) throws IOException {
    SaveStateRegistry reg = new SaveStateRegistry();
    reg.register(new CounterLive(0));
    reg.register(legacy("box", new Box()));
    StateLoader.load(reg, MigrationInput.of(stream), StreamReader.Options.DEFAULT, expected, CommandListener.NONE);
  }

  /** Length of the trailing vmdesc JSON: from the '{' after the last NUL to the end. */
  private static int jsonLength(byte[] stream) {
    int lastNul = stream.length - 1;
    while (stream[lastNul] != 0) {
      lastNul--;
    }
    int brace = lastNul;
    while (stream[brace] != '{') {
      brace++;
    }
    return stream.length - brace;
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new AssertionError("not found");
  }
}
