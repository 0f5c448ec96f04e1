package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class RamRecordCodecTest {
  private static final int PAGE = 4096;
  private static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  /** Writes a block list, random/zero/xbzrle pages over three chunks; returns the stream. */
  private static byte[] sampleStream(List<RamBlock> src, Random r) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    RamRecordWriter w = new RamRecordWriter(out);
    w.writeBlockList(src, false);
    w.writeEos();
    for (RamBlock b : src) {
      for (long off = 0; off < b.usedLength(); off += PAGE) {
        MemorySegment page = b.targetPage(off);
        if (r.nextInt(3) == 0) {
          w.writeZeroPage(b, off);
        } else {
          byte[] data = new byte[PAGE];
          r.nextBytes(data);
          MemorySegment.copy(data, 0, page, ValueLayout.JAVA_BYTE, 0, PAGE);
          w.writePage(b, off);
          out.flush(); // pages are queued by reference: send before the next change
        }
      }
    }
    w.writeEos();
    // a second round: small XBZRLE changes
    byte[] delta = new byte[PAGE];
    for (RamBlock b : src) {
      for (long off = 0; off < b.usedLength(); off += 2 * PAGE) {
        byte[] old = b.targetPage(off).toArray(ValueLayout.JAVA_BYTE);
        byte[] cur = old.clone();
        cur[r.nextInt(PAGE)] ^= 0x5A;
        int n = Xbzrle.encode(old, cur, delta, PAGE);
        MemorySegment.copy(cur, 0, b.targetPage(off), ValueLayout.JAVA_BYTE, 0, PAGE);
        w.writeXbzrlePage(b, off, delta, n);
      }
    }
    w.writeEos();
    out.flush();
    return bytes.toByteArray();
  }

  private static List<RamBlock> blocks(String... spec) {
    List<RamBlock> l = new ArrayList<>();
    for (int i = 0; i < spec.length; i += 2) {
      l.add(RamBlock.allocate(spec[i], Long.parseLong(spec[i + 1]) * PAGE));
    }
    return l;
  }

  private static void loadAll(RamLoader loader, MigrationInput in) throws IOException {
    while (!in.atEnd()) {
      loader.loadChunk(in);
    }
  }

  @Test
  void zeroPageTestSeesEveryByteOfThePageAndNoneOfItsNeighbours() {
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
      MemorySegment region = arena.allocate(4 * 4096L, 4096);
      long page = 2 * 4096L;
      assertThat(RamRecordWriter.isZeroPage(region, page)).isTrue();
      // every single non-zero byte of the page is seen: in the first qword, just after it, and last
      for (long at : new long[] {0, 7, 8, 9, 4095}) {
        region.fill((byte) 0);
        region.set(ValueLayout.JAVA_BYTE, page + at, (byte) 1);
        assertThat(RamRecordWriter.isZeroPage(region, page)).as("non-zero byte at %d", at).isFalse();
      }
      // bytes of the neighbours do not count: the last byte before the page and the first after it
      region.fill((byte) 0);
      region.set(ValueLayout.JAVA_BYTE, page - 1, (byte) 1);
      region.set(ValueLayout.JAVA_BYTE, page + 4096, (byte) 1);
      assertThat(RamRecordWriter.isZeroPage(region, page)).isTrue();
      assertThat(RamRecordWriter.isZeroPage(region, page + 4096)).isFalse();
    }
  }

  @Test
  void roundTripWholeAndFragmented() throws IOException {
    System.out.println("RamRecordCodecTest seed " + SEED + " (-Dferry.seed=" + SEED + ")");
    List<RamBlock> src = blocks("pc.ram", "64", "/rom@etc/acpi/tables", "4", "pc.bios", "8");
    byte[] stream = sampleStream(src, new Random(SEED));
    List<Function<byte[], MigrationInput>> inputs = List.of(
        MigrationInput::of,
        b -> new MigrationInput(FragmentingChannel.oneByteAtATime(b)),
        b -> new MigrationInput(FragmentingChannel.randomShortReads(b, SEED, 700)));
    for (Function<byte[], MigrationInput> mk : inputs) {
      List<RamBlock> dst = blocks("pc.ram", "64", "/rom@etc/acpi/tables", "4", "pc.bios", "8");
      RamLoader loader = new RamLoader(RamBlockResolver.of(dst), RamLoadOptions.defaults());
      loadAll(loader, mk.apply(stream));
      for (int i = 0; i < src.size(); i++) {
        assertThat(dst.get(i).memory().mismatch(src.get(i).memory())).isEqualTo(-1);
      }
      assertThat(loader.stats().chunks()).isEqualTo(3);
      assertThat(loader.stats().xbzrlePages()).isEqualTo(32 + 2 + 4);
      assertThat(loader.stats().blockLists()).isEqualTo(1);
    }
  }

  @Test
  void continueAndNamesOnTheWire() throws IOException {
    List<RamBlock> b = blocks("a", "2", "b", "1");
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    RamRecordWriter w = new RamRecordWriter(out);
    w.writeZeroPage(b.get(0), 0);
    w.writeZeroPage(b.get(0), PAGE);
    w.writeZeroPage(b.get(1), 0);
    w.forgetLastBlock();
    w.writeZeroPage(b.get(1), 0);
    w.writeEos();
    out.flush();
    assertThat(HexFormat.of().formatHex(bytes.toByteArray()))
        .isEqualTo(
            "0000000000000002" + "0161" + "00"
                + "0000000000001022" + "00"
                + "0000000000000002" + "0162" + "00"
                + "0000000000000002" + "0162" + "00"
                + "0000000000000010");
  }

  @Test
  void isZero() {
    MemorySegment page = MemorySegment.ofArray(new byte[3 * PAGE]);
    assertThat(RamRecordWriter.isZero(page)).isTrue();
    page.set(ValueLayout.JAVA_BYTE, 3 * PAGE - 1, (byte) 1);
    assertThat(RamRecordWriter.isZero(page)).isFalse();
    assertThat(RamRecordWriter.isZero(page.asSlice(0, 2 * PAGE))).isTrue();
  }

  @Test
  void compressedPages() throws IOException {
    byte[] page = new byte[PAGE];
    new Random(1).nextBytes(page);
    Arrays.fill(page, 0, 2000, (byte) 3);
    Deflater d = new Deflater(1);
    d.setInput(page);
    d.finish();
    byte[] z = new byte[RamLoader.MAX_COMPRESSED_LENGTH];
    int zlen = d.deflate(z);
    ByteBuffer rec = ByteBuffer.allocate(8 + 2 + 4 + zlen + 8);
    rec.putLong(0x100).put((byte) 1).put((byte) 'a').putInt(zlen).put(z, 0, zlen).putLong(0x10);
    List<RamBlock> b = blocks("a", "1");
    RamLoader off = new RamLoader(RamBlockResolver.of(b), RamLoadOptions.defaults());
    assertThatThrownBy(() -> off.loadChunk(MigrationInput.of(rec.array())))
        .hasMessageContaining("compress capability is off");
    RamLoader on = new RamLoader(RamBlockResolver.of(b), RamLoadOptions.defaults().withCompressEnabled(true));
    on.loadChunk(MigrationInput.of(rec.array()));
    assertThat(b.get(0).memory().toArray(ValueLayout.JAVA_BYTE)).isEqualTo(page);
    // a zlib stream of a shorter page is refused
    byte[] bad = rec.array().clone();
    bad[14 + 5] ^= 0x40;
    RamLoader on2 = new RamLoader(RamBlockResolver.of(blocks("a", "1")), RamLoadOptions.defaults().withCompressEnabled(true));
    assertThatThrownBy(() -> on2.loadChunk(MigrationInput.of(bad)))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("block 'a'");
  }

  /** Each row: a record sequence (hex), the message fragment, the offset reported. */
  @Test
  void corruptRecordsFailWithWhatAndWhere() {
    String name = "01" + "61"; // "a"
    String[][] rows = {
      {"0000000000000001" + name, "invalid RAM record flags 0x1 (FULL)", "0"},
      {"000000000000000a" + name, "invalid RAM record flags 0xa (ZERO|PAGE)", "0"},
      {"0000000000000080", "invalid RAM record flags 0x80 (HOOK)", "0"},
      {"0000000000000200", "invalid RAM record flags 0x200 (MULTIFD_FLUSH)", "0"},
      {"0000000000000022" + "00", "uses CONTINUE before any block was named", "0"},
      {"0000000000000002" + "0162" + "00", "names unknown block 'b'", "0"},
      {"0000000000000002" + "00" + "00", "names unknown block ''", "0"},
      {"0000000000002002" + name + "00", "offset 0x2000 is beyond block 'a' (length 0x2000)", "0"},
      {"0000000000000002" + name + "00" + "0000000000001022" + "00" + "0000000000002022" + "00",
        "RAM record ZERO|CONTINUE: offset 0x2000 is beyond block 'a'", "20"},
      {"0000000000000040" + name + "02" + "0004" + "ec0801d5", "encoding byte 0x02", "0"},
      {"0000000000000040" + name + "01" + "1001", "XBZRLE delta of 4097 bytes exceeds the page size", "0"},
      {"0000000000000040" + name + "01" + "0003" + "ff7f01", "XBZRLE decode error", "0"},
      {"0000000000003004" + name + "0000000000002000" + "0162" + "0000000000001000", "names block 'b', which this machine does not have", "18"},
      {"0000000000002004" + name + "0000000000004000", "exceeds what is left of the list total", "8"},
      {"0000000000002004" + name + "0000000000002000", "length mismatch: stream 0x2000, local 0x1000".replace("0x1000", "0x2000"), "-"},
      {"0000010000000004" + name + "0000000000002000", "RAM block list total 0x10000000000 bytes exceeds the limit", "0"},
      {"0000000000001004" + name + "0000000000000800", "length 0x800 is not a positive multiple of 4096", "8"},
      {"0000000000000008" + name + "00", "unexpected end of stream", "-"},
    };
    for (String[] row : rows) {
      byte[] in = HexFormat.of().parseHex(row[0]);
      List<RamBlock> b = blocks("a", "2");
      RamLoader l = new RamLoader(RamBlockResolver.of(b), RamLoadOptions.defaults().withMaxTotalBytes(1L << 36));
      if (row[1].startsWith("length mismatch")) {
        // the stream's list says 0x2000, this machine's block is 0x1000
        l = new RamLoader(RamBlockResolver.of(blocks("a", "1")), RamLoadOptions.defaults());
        row[1] = "RAM block 'a' length mismatch: stream 0x2000, local 0x1000";
      }
      RamLoader loader = l;
      MigrationInput mi = MigrationInput.of(in);
      assertThatThrownBy(() -> loader.loadChunk(mi))
          .as(row[0])
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining(row[1])
          .satisfies(e -> {
            if (!row[2].equals("-")) {
              assertThat(((MigrationStreamException) e).offset()).isEqualTo(Long.parseLong(row[2]));
            }
          });
      // the error sticks
      assertThatThrownBy(mi::readU8).isInstanceOf(IOException.class);
    }
  }

  @Test
  void allocatingResolverCapsBeforeAllocating() throws IOException {
    try (RamBlockResolver.Allocating r = new RamBlockResolver.Allocating(1L << 20)) {
      // 1 TiB block in a list whose total passes the loader's cap: refused by the resolver's cap
      byte[] list = HexFormat.of().parseHex("0000010000000004" + "0161" + "0000010000000000");
      RamLoader l = new RamLoader(r, RamLoadOptions.defaults());
      assertThatThrownBy(() -> l.loadChunk(MigrationInput.of(list)))
          .hasMessageContaining("RAM block 'a' length 0x10000000000 exceeds the cap");
      assertThat(r.blocks()).isEmpty();
      byte[] ok = HexFormat.of().parseHex("0000000000002004" + "0161" + "0000000000002000" + "0000000000000010");
      new RamLoader(r, RamLoadOptions.defaults()).loadChunk(MigrationInput.of(ok));
      assertThat(r.blocks()).extracting(RamBlock::name).containsExactly("a");
    }
  }

  @Test
  void postcopyPageSizeField() throws IOException {
    RamBlock huge = RamBlock.allocate("huge", 2 << 20, 2 << 20);
    byte[] list = HexFormat.of().parseHex("0000000000200004" + "0468756765" + "0000000000200000" + "0000000000200000" + "0000000000000010");
    new RamLoader(RamBlockResolver.of(List.of(huge)), RamLoadOptions.defaults().withPostcopyAdvised(true))
        .loadChunk(MigrationInput.of(list));
    byte[] wrong = list.clone();
    wrong[8 + 5 + 8 + 5] = 0x10; // page size 0x100000
    assertThatThrownBy(() ->
            new RamLoader(RamBlockResolver.of(List.of(huge)), RamLoadOptions.defaults().withPostcopyAdvised(true))
                .loadChunk(MigrationInput.of(wrong)))
        .hasMessageContaining("RAM block 'huge' page size mismatch: stream 0x100000, local 0x200000");
    // writer mirrors it
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    RamRecordWriter w = new RamRecordWriter(out);
    w.writeBlockList(List.of(huge), true);
    w.writeEos();
    out.flush();
    assertThat(bytes.toByteArray()).isEqualTo(list);
  }
}
