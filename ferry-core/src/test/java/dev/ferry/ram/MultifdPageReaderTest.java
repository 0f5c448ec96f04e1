package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.testing.Captures;
import dev.ferry.testing.FragmentingChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The multifd channel codec on QEMU 7.2's captures: golden, round trip, fragmented, corrupted. */
@Timeout(60)
class MultifdPageReaderTest {
  /** The blocks of the captures' guest (pc, 64 MiB), as their main streams list them. */
  private static List<RamBlock> blocks() {
    return List.of(
        RamBlock.allocate("pc.ram", 0x4000000),
        RamBlock.allocate("/rom@etc/acpi/tables", 0x20000),
        RamBlock.allocate("pc.bios", 0x40000),
        RamBlock.allocate("pc.rom", 0x20000),
        RamBlock.allocate("/rom@etc/table-loader", 0x1000),
        RamBlock.allocate("/rom@etc/acpi/rsdp", 0x1000));
  }

  /** What reading a whole channel saw. */
  record Seen(MultifdInit init, int packets, int syncs, long pages, String pcRamSha256) {}

  private static Seen readChannel(MigrationInput in, MultifdCompression method) throws IOException {
    List<RamBlock> bl = blocks();
    try (MultifdPageReader r = new MultifdPageReader(0, method)) {
      RamBlockResolver res = RamBlockResolver.of(bl);
      MultifdInit init = MultifdInit.read(in);
      MultifdPacket p = new MultifdPacket();
      int packets = 0;
      int syncs = 0;
      while (p.read(in)) {
        r.readPages(p, in, res);
        packets++;
        syncs += p.sync() ? 1 : 0;
      }
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(bl.getFirst().memory().asByteBuffer());
      return new Seen(init, packets, syncs, r.pages(), HexFormat.of().formatHex(md.digest()));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    } finally {
      bl.forEach(RamBlock::close);
    }
  }

  @Test
  void goldenHeadersOfTheNoneCapture() throws IOException {
    // spec §8.1: channel id 0 of run "none"
    MigrationInput in = MigrationInput.of(Captures.multifd("none", 1));
    MultifdInit init = MultifdInit.read(in);
    assertThat(init.id()).isZero();
    assertThat(init.uuidText()).isEqualTo("00000000-0000-0000-0000-000000000000");
    MultifdPacket p = new MultifdPacket();
    assertThat(p.read(in)).isTrue();
    assertThat(p.streamOffset()).isEqualTo(64);
    assertThat(p.sync()).isTrue();
    assertThat(p.normalPages()).isZero();
    assertThat(p.packetNum()).isZero();
    assertThat(p.pagesAlloc()).isEqualTo(128);
    in.skip(0); // no payload
    assertThat(p.read(in)).isTrue();
    assertThat(p.streamOffset()).isEqualTo(0x580);
    assertThat(p.flags()).isZero();
    assertThat(p.normalPages()).isEqualTo(128);
    assertThat(p.nextPacketSize()).isEqualTo(0x80000);
    assertThat(p.packetNum()).isEqualTo(2);
    assertThat(p.block()).isEqualTo("pc.ram");
    assertThat(new long[] {p.offset(0), p.offset(1), p.offset(2), p.offset(3), p.offset(4), p.offset(127)})
        .containsExactly(0x0, 0x6000, 0x8000, 0x9000, 0x9f000, 0x418000);
    assertThat(in.position()).isEqualTo(0x580 + MultifdPacket.LENGTH);
    in.skip(128 * 4096);
    assertThat(p.read(in)).isTrue();
    assertThat(p.streamOffset()).isEqualTo(0x80ac0);
    assertThat(p.packetNum()).isEqualTo(4);
  }

  @ParameterizedTest
  @ValueSource(strings = {"none", "zlib", "zstd"})
  void everyPacketOfBothChannelsDecodes(String tag) throws IOException {
    MultifdCompression m = MultifdCompression.fromQmpName(tag);
    int syncsPerChannel = tag.equals("none") ? 14 : 11; // spec §0: RAM EOS records = SYNCs per channel
    long pages = 0;
    for (int conn = 1; conn <= 2; conn++) {
      Seen s = readChannel(MigrationInput.of(Captures.multifd(tag, conn)), m);
      assertThat(s.init().id()).isEqualTo(conn - 1);
      assertThat(s.syncs()).isEqualTo(syncsPerChannel);
      pages += s.pages();
    }
    // spec §5: ram.normal 21636 = 21689 wire pages - 53 duplicates in run "none"
    if (tag.equals("none")) {
      assertThat(pages).isEqualTo(21689);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"none", "zlib", "zstd"})
  void fragmentedInputGivesTheSameRam(String tag) throws IOException {
    MultifdCompression m = MultifdCompression.fromQmpName(tag);
    byte[] bytes = Captures.multifd(tag, 2);
    Seen whole = readChannel(MigrationInput.of(bytes), m);
    long seed = Long.getLong("ferry.seed", 12);
    Seen pieces = readChannel(new MigrationInput(FragmentingChannel.randomShortReads(bytes, seed, 700)), m);
    assertThat(pieces).as("seed %d", seed).isEqualTo(whole);
    if (tag.equals("zstd")) {
      Seen bytewise = readChannel(new MigrationInput(FragmentingChannel.oneByteAtATime(bytes)), m);
      assertThat(bytewise).isEqualTo(whole);
    }
  }

  @Test
  void roundTripOfInitAndHeader() throws IOException {
    byte[] uuid = HexFormat.of().parseHex("123456789abcdef01122334455667788");
    ByteBuffer b = ByteBuffer.allocate(MultifdInit.LENGTH + MultifdPacket.LENGTH);
    new MultifdInit(uuid, 3).write(b);
    new MultifdPacket().set(MultifdPacket.FLAG_SYNC | MultifdCompression.ZSTD.flag(), 2, 777, 42, "pc.ram",
        new long[] {0x1000, 0x7000}).write(b);
    assertThat(b.position()).isEqualTo(b.capacity());
    MigrationInput in = MigrationInput.of(b.array());
    MultifdInit init = MultifdInit.read(in);
    assertThat(init.uuidText()).isEqualTo("12345678-9abc-def0-1122-334455667788");
    assertThat(init.id()).isEqualTo(3);
    MultifdPacket p = new MultifdPacket();
    assertThat(p.read(in)).isTrue();
    assertThat(p.toString()).isEqualTo(
        "flags 0x5 SYNC, 2 pages, packet_num 42, 'pc.ram', payload 777 bytes, offsets 0x1000 0x7000");
    assertThat(p.read(in)).isFalse();
  }

  /** A corruption of channel id 1 (conn2) of a capture and the message it must give. */
  record Corruption(String name, String tag, Consumer<byte[]> damage, String message) {}

  private static void putInt(byte[] b, int at, int v) {
    ByteBuffer.wrap(b).putInt(at, v);
  }

  private static void putLong(byte[] b, int at, long v) {
    ByteBuffer.wrap(b).putLong(at, v);
  }

  /** conn2's first page packet (after init and the empty setup SYNC). */
  private static final int PKT = MultifdInit.LENGTH + MultifdPacket.LENGTH;

  @TestFactory
  Stream<DynamicTest> corruptionsEndInOneClearError() {
    List<Corruption> table = new ArrayList<>();
    table.add(new Corruption("init magic", "none", b -> b[0] ^= (byte) 0xff,
        "multifd: received packet magic ee223344 expected 11223344 (offset 0)"));
    table.add(new Corruption("init version", "none", b -> putInt(b, 4, 2),
        "multifd: received packet version 2 expected 1 (offset 4)"));
    table.add(new Corruption("packet magic (the badmagic run)", "none", b -> b[64] ^= (byte) 0xff,
        "multifd: received packet magic ee223344 and expected magic 11223344 (offset 64)"));
    table.add(new Corruption("packet version", "none", b -> putInt(b, PKT + 4, 7),
        "multifd: received packet version 7 and expected version 1 (offset " + PKT + ")"));
    table.add(new Corruption("pages_alloc past 128", "none", b -> putInt(b, PKT + 12, 129),
        "multifd: received packet with size 129 and expected a size of 128 (offset " + PKT + ")"));
    table.add(new Corruption("normal_pages past pages_alloc", "none", b -> {
          putInt(b, PKT + 12, 64);
          putInt(b, PKT + 16, 65);
        }, "multifd: received packet with 65 pages and expected maximum pages are 64 (offset " + PKT + ")"));
    table.add(new Corruption("unknown block", "none", b -> b[PKT + 64] = 'x',
        "multifd: unknown ram block xc.ram (offset " + PKT + ")"));
    table.add(new Corruption("offset past the block", "none", b -> putLong(b, PKT + MultifdPacket.OFFSETS_AT + 8, 0x4000000),
        "multifd: offset too long 67108864 (max 4000000) (offset " + (PKT + MultifdPacket.OFFSETS_AT + 8) + ")"));
    table.add(new Corruption("negative offset", "none", b -> putLong(b, PKT + MultifdPacket.OFFSETS_AT, -4096),
        "multifd: offset too long 18446744073709547520 (max 4000000) (offset " + (PKT + MultifdPacket.OFFSETS_AT) + ")"));
    table.add(new Corruption("compression flags of another method", "none", b -> putInt(b, PKT + 8, 0x4),
        "multifd 0: flags received 4 flags expected 0 (offset " + PKT + ")"));
    table.add(new Corruption("payload size past the receive buffer", "zstd", b -> putInt(b, PKT + 20, 0x100001),
        "multifd 0: packet size received 1048577 exceeds the receive buffer of 1048576 bytes (offset " + PKT + ")"));
    table.add(new Corruption("zstd frame magic", "zstd", b -> b[PKT + MultifdPacket.LENGTH] ^= 0x55,
        "multifd 0: decompressStream returned Unknown frame descriptor (offset " + PKT + ")"));
    table.add(new Corruption("zlib header", "zlib", b -> b[PKT + MultifdPacket.LENGTH] ^= 0x55,
        "multifd 0: inflate failed: incorrect header check (offset " + PKT + ")"));
    table.add(new Corruption("zlib payload cut short", "zlib", b -> putInt(b, PKT + 20, 100),
        "multifd 0: inflate generated too few output"));
    return table.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
      byte[] b = Captures.multifd(c.tag(), 2);
      c.damage().accept(b);
      assertThatThrownBy(() -> readChannel(MigrationInput.of(b), MultifdCompression.fromQmpName(c.tag())))
          .isInstanceOf(MigrationStreamException.class)
          .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n").startsWith(c.message()));
    }));
  }

  @Test
  void truncationMidPacketIsAnEndOfStreamError() {
    byte[] b = Captures.multifd("none", 2);
    byte[] cut = java.util.Arrays.copyOf(b, PKT + MultifdPacket.LENGTH + 5000);
    assertThatThrownBy(() -> readChannel(MigrationInput.of(cut), MultifdCompression.NONE))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("unexpected end of stream");
  }
}
