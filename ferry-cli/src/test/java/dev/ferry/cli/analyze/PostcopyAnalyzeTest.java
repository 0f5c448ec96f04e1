package dev.ferry.cli.analyze;

import static dev.ferry.cli.analyze.AnalyzeCommandTest.ferry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.analyze.AnalyzeCommandTest.Run;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.ReturnPathMessage;
import dev.ferry.testing.Captures;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry analyze} on QEMU 7.2's real postcopy: the first connection of a recorded postcopy
 * (source to destination, cut when the source paused it) and its return path (test resources
 * {@code qemu-streams/postcopy/}, see the README there), and the precopy capture that only advised
 * postcopy.
 */
@Timeout(120)
class PostcopyAnalyzeTest {
  @TempDir Path tmp;

  static byte[] resource(String name) {
    try (InputStream in = new GZIPInputStream(Captures.open("postcopy/" + name))) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private Path file(String name, byte[] bytes) throws IOException {
    Path p = tmp.resolve(name);
    Files.write(p, bytes);
    return p;
  }

  private static final long MiB = 1 << 20;

  @Test
  void realPostcopyDecodesInFull() throws IOException {
    byte[] s = resource("pc-A0-c2s.bin.gz");
    try (StreamAnalyzer a = new StreamAnalyzer(null, s.length, true, 1L << 30)) {
      a.analyze(MigrationInput.of(s), StreamReader.Options.DEFAULT);
      List<StreamCommand> c = a.commands();
      assertThat(c.stream().map(x -> x.command().name()).toList())
          .containsExactly(
              "OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE",
              "POSTCOPY_RAM_DISCARD", "POSTCOPY_RAM_DISCARD", "POSTCOPY_RAM_DISCARD",
              "POSTCOPY_RAM_DISCARD", "POSTCOPY_RAM_DISCARD", "POSTCOPY_RAM_DISCARD",
              "PING", "PACKAGED", "POSTCOPY_LISTEN", "PING", "POSTCOPY_RUN", "PING");
      assertThat(c.stream().filter(x -> x instanceof StreamCommand.Ping).map(x -> ((StreamCommand.Ping) x).value()))
          .containsExactly(1L, 2L, 3L, 4L);
      StreamCommand.PostcopyAdvise adv = (StreamCommand.PostcopyAdvise) c.get(2);
      assertThat(adv.hostPageSizes()).isEqualTo(0x1000);
      assertThat(adv.targetPageSize()).isEqualTo(0x1000);
      // discards: pc.ram keeps only the pages sent since their last dirtying
      assertThat(a.discards().keySet()).containsExactly(
          "pc.ram", "/rom@etc/acpi/tables", "pc.bios", "pc.rom", "/rom@etc/table-loader", "/rom@etc/acpi/rsdp");
      assertThat(a.discards().get("pc.ram")).containsExactly(
          new StreamCommand.Range(0x0, 0x1000), new StreamCommand.Range(0x6000, 0x1000),
          new StreamCommand.Range(0xe8000, 0x2000), new StreamCommand.Range(0xf4000, 0xff0c000));
      assertThat(a.discards().get("pc.bios")).containsExactly(new StreamCommand.Range(0, 0x40000));
      // the package: LISTEN, the 33 device sections of a 2-vCPU pc, PING 3, RUN
      assertThat(a.packages()).hasSize(1);
      StreamAnalyzer.Package p = a.packages().get(0);
      assertThat(p.offset()).isEqualTo(84793);
      assertThat(p.length()).isEqualTo(15021);
      assertThat(p.commands()).containsExactly("POSTCOPY_LISTEN", "PING 3", "POSTCOPY_RUN");
      assertThat(p.sections()).hasSize(33);
      assertThat(p.sections().get(0)).isEqualTo("'timer' instance 0 (id 0) v2");
      assertThat(p.sections()).contains("'cpu' instance 1 (id 9) v12");
      // postcopy RAM after RUN: each page the return path requested comes first in its section, in
      // the order requested (0x0, 0x6000, 0xff000, 0xfd000, 0xf6000, 0xfc000, 0xfb000, 0xf5000)
      assertThat(a.postcopyRan()).isTrue();
      assertThat(a.postcopySections()).isEqualTo(15);
      assertThat(a.postcopyPages()).hasSize(15751);
      assertThat(a.postcopyPages()).allMatch(pg -> pg.block().equals("pc.ram") && pg.length() == 4096);
      List<Long> offsets = a.postcopyPages().stream().map(StreamAnalyzer.PostcopyPage::offset).toList();
      assertThat(offsets.subList(0, 3)).containsExactly(0x0L, 0x6000L, 0xe8000L);
      assertThat(offsets).containsSubsequence(0x0L, 0x6000L, 0xff000L, 0xfd000L, 0xf6000L, 0xfc000L, 0xfb000L, 0xf5000L);
      assertThat(offsets).doesNotHaveDuplicates();
      assertThat(a.postcopyDuplicates()).isZero();
      // every page after RUN was discarded before (not sent since it was last dirtied)
      assertThat(a.postcopyPages()).allMatch(pg -> a.discards().get("pc.ram").stream()
          .anyMatch(r -> pg.offset() >= r.start() && pg.offset() < r.start() + r.length()));
      // the connection was cut by migrate-pause: no EOF, listed to the last whole record
      assertThat(a.eofOffset()).isEqualTo(-1);
      assertThat(a.cut()).isNotNull();
      assertThat(a.cut().offset()).isEqualTo(s.length);
    }
  }

  @Test
  void listingWithReturnPath() throws IOException {
    Path c2s = file("c2s.bin.gz", Captures.bytes("postcopy/pc-A0-c2s", "bin.gz"));
    Path s2c = file("s2c.bin.gz", Captures.bytes("postcopy/pc-A0-s2c", "bin.gz"));
    Run r = ferry("analyze", c2s.toString(), "--return-path", s2c.toString());
    assertThat(r.err()).isEmpty();
    assertThat(r.exit()).isZero();
    assertThat(r.out())
        .contains("COMMAND  POSTCOPY_ADVISE host page sizes 0x1000, target page size 0x1000")
        .contains("COMMAND  POSTCOPY_RAM_DISCARD 'pc.ram' [0x0, +0x1000) [0x6000, +0x1000) [0xe8000, +0x2000) [0xf4000, +0xff0c000)")
        .contains("COMMAND  PACKAGED 15021 bytes")
        .contains("COMMAND    POSTCOPY_LISTEN")
        .contains("FULL       'cpu' instance 1 (id 9) v12  body 1851 bytes")
        .contains("COMMAND    PING 3")
        .contains("COMMAND    POSTCOPY_RUN")
        .contains("PACKAGED end of package: 33 device sections, 3 commands")
        .contains("body 13112 bytes, postcopy 546 pages: 'pc.ram' 0xf5000 0xfa000 0xed8000")
        .contains("CUT      the stream ends in postcopy without EOF")
        .contains("commands: 15 (OPEN_RETURN_PATH 1, PING 4, POSTCOPY_ADVISE 1, POSTCOPY_RAM_DISCARD 6, PACKAGED 1, POSTCOPY_LISTEN 1, POSTCOPY_RUN 1)")
        .contains("discarded: 'pc.ram' 4 ranges, 267452416 bytes (65296 target pages)")
        .contains("package at 84793: 15021 bytes, 33 device sections, commands POSTCOPY_LISTEN, PING 3, POSTCOPY_RUN")
        .contains("postcopy RAM after RUN: 15751 pages in 15 sections ('pc.ram' 15751), 0 sent twice")
        .contains("stream cut at offset 303288 in postcopy, no EOF")
        .contains("return path " + s2c + ": 12 messages (PONG 4, REQ_PAGES_ID 1, REQ_PAGES 7)")
        .contains("           0  PONG         value 1")
        .contains("          24  PONG         value 3")
        .contains("          32  REQ_PAGES_ID 'pc.ram' [0x0, +0x1000)")
        .contains("         151  REQ_PAGES    'pc.ram' [0xf5000, +0x1000)");
  }

  @Test
  void returnPathMessages() throws IOException {
    List<ReturnPathDecoder.Message> m = ReturnPathDecoder.decode(resource("pc-A0-s2c.bin.gz"));
    assertThat(m.stream().map(ReturnPathDecoder.Message::type).toList()).containsExactly(
        ReturnPathMessage.PONG, ReturnPathMessage.PONG, ReturnPathMessage.PONG, ReturnPathMessage.PONG,
        ReturnPathMessage.REQ_PAGES_ID, ReturnPathMessage.REQ_PAGES, ReturnPathMessage.REQ_PAGES,
        ReturnPathMessage.REQ_PAGES, ReturnPathMessage.REQ_PAGES, ReturnPathMessage.REQ_PAGES,
        ReturnPathMessage.REQ_PAGES, ReturnPathMessage.REQ_PAGES);
    // the precopy capture's return path: PONG 1, then SHUT ok
    List<ReturnPathDecoder.Message> adv = ReturnPathDecoder.decode(Captures.bytes("pc-256M-postcopy-advise", "returnpath.bin"));
    assertThat(adv).containsExactly(
        new ReturnPathDecoder.Message(0, ReturnPathMessage.PONG, "value 1"),
        new ReturnPathDecoder.Message(8, ReturnPathMessage.SHUT, "status 0 (ok)"));
    // the recovery connection's return path: QEMU's received bitmaps, RESUME_ACK, SHUT
    List<ReturnPathDecoder.Message> b0 = ReturnPathDecoder.decode(resource("pc-B0-s2c.bin.gz"));
    assertThat(b0).hasSize(8);
    assertThat(b0.get(0)).isEqualTo(
        new ReturnPathDecoder.Message(0, ReturnPathMessage.RECV_BITMAP, "'pc.ram' bitmap 8192 bytes, 15991 pages received"));
    assertThat(b0.get(5).text()).isEqualTo("'/rom@etc/acpi/rsdp' bitmap 8 bytes, 0 pages received");
    assertThat(b0.get(6)).isEqualTo(new ReturnPathDecoder.Message(8436, ReturnPathMessage.RESUME_ACK, "value 1"));
    assertThat(b0.get(7)).isEqualTo(new ReturnPathDecoder.Message(8444, ReturnPathMessage.SHUT, "status 0 (ok)"));
    assertThat(ReturnPathDecoder.counts(b0)).isEqualTo("SHUT 1, RECV_BITMAP 6, RESUME_ACK 1");
    // the recovery messages, built by hand as QEMU 7.2 writes them
    byte[] rec = {
      0, 5, 0, 7, 6, 'p', 'c', '.', 'r', 'a', 'm', // RECV_BITMAP 'pc.ram'
      0, 0, 0, 0, 0, 0, 0, 8, (byte) 0xff, 3, 0, 0, 0, 0, 0, (byte) 0x80, // 8 bytes, 11 bits set
      1, 0x23, 0x45, 0x67, (byte) 0x89, (byte) 0xAB, (byte) 0xCD, (byte) 0xEF,
      0, 6, 0, 4, 0, 0, 0, 1, // RESUME_ACK 1
      0, 1, 0, 4, 0, 0, 0, 0 // SHUT 0
    };
    assertThat(ReturnPathDecoder.decode(rec)).containsExactly(
        new ReturnPathDecoder.Message(0, ReturnPathMessage.RECV_BITMAP, "'pc.ram' bitmap 8 bytes, 11 pages received"),
        new ReturnPathDecoder.Message(35, ReturnPathMessage.RESUME_ACK, "value 1"),
        new ReturnPathDecoder.Message(43, ReturnPathMessage.SHUT, "status 0 (ok)"));
  }

  @Test
  void realRecoveryConnectionDecodesAsTheContinuationOfTheCutOne() throws IOException {
    byte[] a0 = resource("pc-A0-c2s.bin.gz");
    byte[] b0 = resource("pc-B0-c2s.bin.gz");
    byte[] rp = resource("pc-B0-s2c.bin.gz");
    try (StreamAnalyzer a = new StreamAnalyzer(null, a0.length, true, 1L << 30)) {
      a.analyze(MigrationInput.of(a0), StreamReader.Options.DEFAULT);
      a.continueWith(MigrationInput.of(b0), b0.length);
      assertThat(a.firstCut().offset()).isEqualTo(303288);
      assertThat(a.recoveryCommands().stream().map(x -> x.command().name()).toList()).containsExactly(
          "RECV_BITMAP", "RECV_BITMAP", "RECV_BITMAP", "RECV_BITMAP", "RECV_BITMAP", "RECV_BITMAP", "POSTCOPY_RESUME");
      assertThat(a.recoveryCommands().stream()
              .filter(x -> x instanceof StreamCommand.RecvBitmap).map(x -> ((StreamCommand.RecvBitmap) x).blockName()))
          .containsExactly("pc.ram", "/rom@etc/acpi/tables", "pc.bios", "pc.rom", "/rom@etc/table-loader", "/rom@etc/acpi/rsdp");
      assertThat(a.cut()).isNull();
      assertThat(a.eofOffset()).isEqualTo(b0.length - 1);
      assertThat(a.recoveryDuplicates()).isZero();
      // QEMU's rule, on its own bytes: the source resends exactly the pages the destination's
      // received bitmap lacks ('pc.ram' bitmap: the first RP message, 8192 bytes at offset 19)
      java.util.BitSet received = java.util.BitSet.valueOf(Arrays.copyOfRange(rp, 19, 19 + 8192));
      assertThat(received.cardinality()).isEqualTo(15991);
      java.util.BitSet resent = new java.util.BitSet();
      for (StreamAnalyzer.PostcopyPage p : a.recoveryPages()) {
        if (p.block().equals("pc.ram")) {
          assertThat(resent.get((int) (p.offset() >> 12))).isFalse();
          resent.set((int) (p.offset() >> 12));
        }
      }
      assertThat(resent.cardinality()).isEqualTo(65536 - 15991);
      assertThat(resent.intersects(received)).isFalse();
    }
  }

  @Test
  void analyzeListsARecoveryConnectionWithContinues() throws IOException {
    Path a0 = file("a0.bin.gz", Captures.bytes("postcopy/pc-A0-c2s", "bin.gz"));
    Path b0 = file("b0.bin.gz", Captures.bytes("postcopy/pc-B0-c2s", "bin.gz"));
    Path rp = file("b0.rp.gz", Captures.bytes("postcopy/pc-B0-s2c", "bin.gz"));
    Run r = ferry("analyze", b0.toString(), "--continues", a0.toString(), "--return-path", rp.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out())
        .contains("775869 bytes, a postcopy recovery connection (no header) continuing " + a0 + " (cut at offset 303288 in postcopy)")
        .contains("           0           COMMAND  RECV_BITMAP 'pc.ram'")
        .contains("          90           COMMAND  RECV_BITMAP '/rom@etc/acpi/rsdp'")
        .contains("         114           COMMAND  POSTCOPY_RESUME")
        .contains("         119    12998  PART     'ram' instance 0 (id 2) v4  body 12993 bytes, postcopy 987 pages: 'pc.ram' 0xf4000")
        .contains("      775868        1  EOF")
        .contains("commands: 7 (RECV_BITMAP 6, POSTCOPY_RESUME 1)")
        .contains("postcopy RAM after recovery: 49675 pages in 55 sections ('pc.ram' 49545, '/rom@etc/acpi/tables' 32,"
            + " 'pc.bios' 64, 'pc.rom' 32, '/rom@etc/table-loader' 1, '/rom@etc/acpi/rsdp' 1), 0 already delivered by the lost connection")
        .contains("EOF at 775868, no vmdesc")
        .contains("        8436  RESUME_ACK   value 1");
    // without --continues: one line saying what the file looks like
    oneLineError(ferry("analyze", b0.toString()), "no stream header: the file starts with a command, as a postcopy recovery connection does");
    // a first connection that was not cut in postcopy continues nothing
    Path advise = file("advise.mig.gz", Captures.bytes("pc-256M-postcopy-advise", "mig.gz"));
    oneLineError(ferry("analyze", b0.toString(), "--continues", advise.toString()),
        "--continues: the first connection did not end cut in postcopy");
    // a recovery connection cut inside its handshake is listed up to the cut
    Path cut = file("b0-cut.bin", Arrays.copyOf(resource("pc-B0-c2s.bin.gz"), 200));
    Run c = ferry("analyze", cut.toString(), "--continues", a0.toString());
    assertThat(c.exit()).as(c.err()).isZero();
    assertThat(c.out()).contains("POSTCOPY_RESUME").contains("stream cut at offset 119 in postcopy, no EOF");
  }

  @Test
  void precopyCaptureThatAdvisedPostcopyStillListsAsBefore() throws IOException {
    Path f = file("advise.mig.gz", Captures.bytes("pc-256M-postcopy-advise", "mig.gz"));
    Path rp = file("advise.rp", Captures.bytes("pc-256M-postcopy-advise", "returnpath.bin"));
    Run r = ferry("analyze", f.toString(), "--return-path", rp.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out())
        .contains("commands: 3 (OPEN_RETURN_PATH 1, PING 1, POSTCOPY_ADVISE 1)")
        .contains("VMDESC   98771 bytes of JSON")
        .contains("return path " + rp + ": 2 messages (SHUT 1, PONG 1)")
        .doesNotContain("postcopy RAM after RUN")
        .doesNotContain("discarded:");
    // --dump ignores the return path and prints exactly the JSON
    Run d = ferry("analyze", f.toString(), "--dump", "desc", "--return-path", rp.toString());
    assertThat(d.exit()).as(d.err()).isZero();
    assertThat(d.out()).doesNotContain("return path");
  }

  // ------------------------------------------------------------------ corruption

  private Run analyzeBytes(byte[] s) throws IOException {
    return ferry("analyze", file("bad.mig", s).toString());
  }

  private static void oneLineError(Run r, String expected) {
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.err()).startsWith("ferry analyze: ").contains(expected);
    assertThat(r.err().strip()).doesNotContain("\n");
  }

  @Test
  void truncatedPackageIsAnError() throws IOException {
    byte[] s = resource("pc-A0-c2s.bin.gz");
    oneLineError(analyzeBytes(Arrays.copyOf(s, 90_000)), "unexpected end of stream");
  }

  @Test
  void packageLengthBeyondTheStream() throws IOException {
    byte[] s = resource("pc-A0-c2s.bin.gz").clone();
    // PACKAGED at 84793: 0x08, be16 command, be16 length 4, be32 package length
    assertThat(s[84793]).isEqualTo((byte) 0x08);
    s[84799] = 0x10; // 0x00103AAD bytes, more than the stream holds
    oneLineError(analyzeBytes(s), "unexpected end of stream");
  }

  @Test
  void discardPastTheBlock() throws IOException {
    byte[] s = resource("pc-A0-c2s.bin.gz").clone();
    // pc.ram's last range [0xf4000, +0xff0c000): its length's be64 at 84584
    assertThat(s[84584 + 6]).isEqualTo((byte) 0xc0);
    s[84584 + 6] = (byte) 0xd0;
    oneLineError(analyzeBytes(s), "POSTCOPY_RAM_DISCARD range [0xf4000, +0xff0d000) does not fit block 'pc.ram'");
  }

  @Test
  void discardLengthPastItsRangeList() throws IOException {
    byte[] s = resource("pc-A0-c2s.bin.gz").clone();
    // pc.ram's discard command length (be16 at 84517): 8 more bytes than its range list
    int len = ((s[84517] & 0xff) << 8) | (s[84518] & 0xff);
    s[84518] = (byte) (len + 8);
    oneLineError(analyzeBytes(s), "range bytes are not a multiple of 16");
  }

  @Test
  void corruptReturnPath() throws IOException {
    Path c2s = file("c2s.bin.gz", Captures.bytes("postcopy/pc-A0-c2s", "bin.gz"));
    byte[] rp = resource("pc-A0-s2c.bin.gz");
    Run cut = ferry("analyze", c2s.toString(), "--return-path", file("cut.rp", Arrays.copyOf(rp, rp.length - 3)).toString());
    oneLineError(cut, "unexpected end of stream");
    byte[] bad = rp.clone();
    bad[1] = 9;
    oneLineError(ferry("analyze", c2s.toString(), "--return-path", file("bad.rp", bad).toString()),
        "return path: unknown message type 9 (length 4)");
    byte[] pages = Arrays.copyOfRange(rp, 55, rp.length); // REQ_PAGES without a REQ_PAGES_ID first
    MigrationStreamException e = org.junit.jupiter.api.Assertions.assertThrows(
        MigrationStreamException.class, () -> ReturnPathDecoder.decode(pages));
    assertThat(e.getMessage()).contains("REQ_PAGES before any REQ_PAGES_ID");
  }
}
