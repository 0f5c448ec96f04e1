package dev.ferry.cli.analyze;

import static dev.ferry.cli.analyze.AnalyzeCommandTest.ferry;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.analyze.AnalyzeCommandTest.Run;
import dev.ferry.testing.Captures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code analyze --extract}'s output files: written to {@code NAME.partial}, forced to disk and
 * renamed only after a successful walk; two blocks, a reserved name or the input never share a file.
 */
@Timeout(120)
class ExtractFilesTest {
  @TempDir Path tmp;

  private static final String CAPTURE = "pc-256M";

  /** pc-256M with RAM block {@code old}'s name in the block list replaced by {@code replacement} (same length). */
  private static byte[] renamed(String old, String replacement) {
    assertThat(replacement).hasSameSizeAs(old);
    byte[] s = Captures.stream(CAPTURE);
    byte[] pat = (((char) old.length()) + old).getBytes(StandardCharsets.ISO_8859_1);
    int at = indexOf(s, pat);
    System.arraycopy(replacement.getBytes(StandardCharsets.ISO_8859_1), 0, s, at + 1, replacement.length());
    return s;
  }

  private static int indexOf(byte[] s, byte[] pat) {
    outer:
    for (int i = 0; i <= s.length - pat.length; i++) {
      for (int j = 0; j < pat.length; j++) {
        if (s[i + j] != pat[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new IllegalStateException("pattern not found");
  }

  private static List<Path> regularFiles(Path dir) throws IOException {
    try (Stream<Path> w = Files.walk(dir)) {
      return w.filter(Files::isRegularFile).toList();
    }
  }

  private static String sha256(Path p) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
  }

  private static void assertOneLineError(Run r, String... fragments) {
    assertThat(r.exit()).as(r.err()).isEqualTo(1);
    String err = r.err().strip();
    assertThat(err).doesNotContain("\n").startsWith("ferry analyze: ").contains(fragments);
  }

  /**
   * The normal path: every block's file is complete once the process's mappings are gone (forced and
   * renamed), no .partial is left, and a second extraction into the same directory replaces the files.
   */
  @Test
  void filesAreCompleteAndRenamed() throws Exception {
    Path in = tmp.resolve("s.mig");
    Files.write(in, Captures.stream(CAPTURE));
    Path dir = tmp.resolve("x");
    for (int run = 0; run < 2; run++) {
      Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
      assertThat(r.exit()).as(r.err()).isZero();
      for (String line : Captures.text(CAPTURE, "ramblocks.sha256").split("\n")) {
        String[] p = line.trim().split("\\s+", 2);
        assertThat(sha256(dir.resolve(p[1]))).as(p[1]).isEqualTo(p[0]);
      }
      assertThat(regularFiles(dir)).noneMatch(p -> p.toString().endsWith(".partial"));
    }
  }

  @Test
  void twoBlocksWritingTheSameFileAreRefused() throws Exception {
    Path in = tmp.resolve("dup.mig");
    Files.write(in, renamed("pc.bios", "/pc.ram"));
    Path dir = tmp.resolve("x");
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("pc.ram"), "from before");
    Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
    assertOneLineError(r, "RAM blocks 'pc.ram' and '/pc.ram' would both be written to ", "pc.ram", "offset ");
    // nothing truncated, no partial file left
    assertThat(Files.readString(dir.resolve("pc.ram"))).isEqualTo("from before");
    assertThat(regularFiles(dir)).containsExactly(dir.resolve("pc.ram"));
  }

  @Test
  void aBlockNamedLikeAnOutputFileIsRefused() throws Exception {
    Path in = tmp.resolve("reserved.mig");
    Files.write(in, renamed("/rom@etc/acpi/rsdp", "////////state.json"));
    Path dir = tmp.resolve("x");
    Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
    assertOneLineError(r, "RAM block '////////state.json' would be written to ", "its own state.json");
    assertThat(regularFiles(dir)).isEmpty();
  }

  @Test
  void aBlockWritingTheInputFileIsRefused() throws Exception {
    Path dir = tmp.resolve("x");
    Files.createDirectories(dir);
    Path in = dir.resolve("pc.rom"); // the stream file, where block pc.rom would go
    byte[] s = Captures.stream(CAPTURE);
    Files.write(in, s);
    Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
    assertOneLineError(r, "RAM block 'pc.rom' would be written to ", "the stream file being analyzed");
    assertThat(Files.readAllBytes(in)).isEqualTo(s);
    assertThat(regularFiles(dir)).containsExactly(in);
  }

  /** A stream cut in the middle of its RAM: an error, and no block file (final or partial) is left. */
  @Test
  void aFailedWalkLeavesNoFiles() throws Exception {
    byte[] s = Captures.stream(CAPTURE);
    Path in = tmp.resolve("cut.mig");
    Files.write(in, java.util.Arrays.copyOf(s, s.length / 2));
    Path dir = tmp.resolve("x");
    Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
    assertOneLineError(r, "unexpected end of stream");
    assertThat(regularFiles(dir)).isEmpty();
  }

  /** An output file that cannot be created (a directory in its place) is a one-line error naming block and file. */
  @Test
  void anOutputFileThatCannotBeWrittenIsAOneLineError() throws Exception {
    Path in = tmp.resolve("s.mig");
    Files.write(in, Captures.stream(CAPTURE));
    Path dir = tmp.resolve("x");
    Files.createDirectories(dir.resolve("pc.rom.partial"));
    Run r = ferry("analyze", in.toString(), "--extract", dir.toString());
    assertOneLineError(r, "RAM block 'pc.rom'", dir.resolve("pc.rom.partial").toString());
    assertThat(regularFiles(dir)).isEmpty();
  }
}
