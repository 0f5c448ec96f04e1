package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.analyze.AnalyzeCommandTest.Run;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.testing.Captures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code ferry analyze MAIN --multifd-channel FILE ...} on the QEMU 7.2 multifd captures. */
@Timeout(120)
class MultifdAnalyzeTest {
  @TempDir Path tmp;

  private Path gz(String tag, int conn) throws IOException {
    Path p = tmp.resolve("mf-" + tag + "-conn" + conn + ".bin.gz");
    if (!Files.exists(p)) {
      Files.write(p, Captures.bytes("multifd/mf-" + tag + "-conn" + conn, "bin.gz"));
    }
    return p;
  }

  private Path raw(String name, byte[] bytes) throws IOException {
    Path p = tmp.resolve(name);
    Files.write(p, bytes);
    return p;
  }

  private static String sha256(Path f) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
  }

  @ParameterizedTest
  @ValueSource(strings = {"none", "zlib", "zstd"})
  void extractRebuildsTheSourceRam(String tag) throws Exception {
    Path dir = tmp.resolve("x-" + tag);
    // channels in the other order than accepted: the id byte decides
    Run r = AnalyzeCommandTest.ferry("analyze", gz(tag, 0).toString(), "--multifd-channel", gz(tag, 2).toString(),
        "--multifd-channel", gz(tag, 1).toString(), "--extract", dir.toString());
    assertThat(r.err()).isEmpty();
    assertThat(r.exit()).isZero();
    String expected = Captures.text("multifd/mf-" + tag, "ramblocks.sha256").split("\\s+")[0];
    assertThat(sha256(dir.resolve("pc.ram"))).isEqualTo(expected);
  }

  @Test
  void withoutTheChannelsTheRamDiffers() throws Exception {
    Path dir = tmp.resolve("x-main-only");
    Run r = AnalyzeCommandTest.ferry("analyze", gz("none", 0).toString(), "--extract", dir.toString());
    assertThat(r.exit()).isZero();
    String expected = Captures.text("multifd/mf-none", "ramblocks.sha256").split("\\s+")[0];
    assertThat(sha256(dir.resolve("pc.ram"))).isNotEqualTo(expected);
  }

  @Test
  void listingShowsInitPacketsAndSyncs() throws IOException {
    Run r = AnalyzeCommandTest.ferry("analyze", gz("zstd", 0).toString(), "--multifd-channel", gz("zstd", 1).toString(),
        "--multifd-channel", gz("zstd", 2).toString());
    assertThat(r.err()).isEmpty();
    assertThat(r.exit()).isZero();
    assertThat(r.out())
        .contains("RAM: 6 blocks, 67641344 bytes, 11 chunks; pages: 1031 zero, 0 normal")
        .contains("multifd: 2 channels, 22105 pages, 11 RAM EOS sync points")
        .contains("multifd channel 0 (mf-zstd-conn1.bin.gz): id 0, uuid 00000000-0000-0000-0000-000000000000, 123 packets"
            + " (11 SYNC), 13509 pages, 466240 bytes, compression zstd")
        .contains("           0       64  INIT     id 0, uuid 00000000-0000-0000-0000-000000000000")
        .contains("          64     1344  PACKET   flags 0x1 SYNC, 0 pages, packet_num 0")
        .contains("        1408   104498  PACKET   flags 0x4, 128 pages, packet_num 2, 'pc.ram', payload 103154 bytes,"
            + " offsets 0x0 0x6000 0x8000 0x9000 ...")
        .contains("multifd channel 1 (mf-zstd-conn2.bin.gz): id 1");
  }

  /** A damaged set of channel files and the one-line error it must give. */
  record Bad(String name, Consumer<byte[]> conn1, Consumer<byte[]> conn2, String message) {}

  private static final int PKT = MultifdInit.LENGTH + MultifdPacket.LENGTH; // the first page packet

  private static void putInt(byte[] b, int at, int v) {
    ByteBuffer.wrap(b).putInt(at, v);
  }

  @TestFactory
  Stream<DynamicTest> badChannelsGiveOneLineErrors() {
    List<Bad> table = new ArrayList<>();
    table.add(new Bad("wrong init magic", b -> b[0] = 0, b -> {},
        "ferry analyze: multifd channel file c1.bin: multifd: received packet magic 223344 expected 11223344 (offset 0)"));
    table.add(new Bad("wrong packet magic (the badmagic run)", b -> b[64] ^= (byte) 0xff, b -> {},
        "ferry analyze: multifd channel 0 (c1.bin): multifd: received packet magic ee223344 and expected magic 11223344"
            + " (offset 64)"));
    table.add(new Bad("wrong uuid", b -> {}, b -> b[8] = 0x12,
        "ferry analyze: multifd channel 1 (c2.bin): multifd: received uuid '12000000-0000-0000-0000-000000000000' and"
            + " expected uuid '00000000-0000-0000-0000-000000000000' for channel 1 (the uuid of c1.bin) (offset 8)"));
    table.add(new Bad("same id twice", b -> {}, b -> b[24] = 0,
        "ferry analyze: multifd channel 0 (c2.bin): multifd: received id '0' already setup' by c1.bin (offset 24)"));
    table.add(new Bad("id past the channels given", b -> {}, b -> b[24] = 2,
        "ferry analyze: multifd channel 2 (c2.bin): channel id 2, but only 2 channel files were given (ids 0 to 1)"
            + " (offset 24)"));
    table.add(new Bad("packet past its page limit", b -> putInt(b, PKT + 16, 129), b -> {},
        "ferry analyze: multifd channel 0 (c1.bin): multifd: received packet with 129 pages and expected maximum pages"
            + " are 128 (offset " + PKT + ")"));
    table.add(new Bad("page past its block", b -> ByteBuffer.wrap(b).putLong(PKT + MultifdPacket.OFFSETS_AT, 0x4000000L),
        b -> {}, "ferry analyze: multifd channel 0 (c1.bin): multifd: offset too long 67108864 (max 4000000) (offset "
            + (PKT + MultifdPacket.OFFSETS_AT) + ")"));
    table.add(new Bad("a channel cut short", b -> {}, b -> Arrays.fill(b, b.length / 2, b.length, (byte) 0),
        "ferry analyze: multifd channel 1 (c2.bin): multifd: received packet magic 0 and expected magic 11223344"));
    table.add(new Bad("a SYNC missing", b -> {
          // the first SYNC of channel 0 turned into a plain empty packet: its SYNCs run out one EOS early
          putInt(b, 64 + 8, 0);
        }, b -> {}, "ferry analyze: multifd channel 0 (c1.bin): the channel ends before its SYNC for the main stream's"
            + " RAM EOS 14"));
    return table.stream().map(t -> DynamicTest.dynamicTest(t.name(), () -> {
      byte[] c1 = Captures.multifd("none", 1);
      byte[] c2 = Captures.multifd("none", 2);
      t.conn1().accept(c1);
      t.conn2().accept(c2);
      Run r = AnalyzeCommandTest.ferry("analyze", gz("none", 0).toString(), "--multifd-channel",
          raw("c1.bin", c1).toString(), "--multifd-channel", raw("c2.bin", c2).toString());
      assertThat(r.exit()).isEqualTo(1);
      assertThat(r.err()).startsWith(t.message()).endsWith("\n");
      assertThat(r.err().strip()).doesNotContain("\n");
    }));
  }

  @Test
  void aTruncatedChannelFileEndsInAClearError() throws IOException {
    byte[] c2 = Captures.multifd("zlib", 2);
    Run r = AnalyzeCommandTest.ferry("analyze", gz("zlib", 0).toString(), "--multifd-channel", gz("zlib", 1).toString(),
        "--multifd-channel", raw("cut.bin", Arrays.copyOf(c2, c2.length - 700)).toString());
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).startsWith("ferry analyze: multifd channel 1 (cut.bin): unexpected end of stream");
    assertThat(r.err().strip()).doesNotContain("\n");
  }
}
