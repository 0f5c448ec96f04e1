package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.vmstate.VMStateCompat;
import dev.ferry.vmstate.VMStateDump;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Issue 9 item 2: {@code ferry vmstate check} reaches the verdicts of QEMU 7.2's {@code
 * scripts/vmstate-static-checker.py} on QEMU's own {@code -dump-vmstate} output and on edited
 * copies of it (resources {@code /qemu-vmstate/}, see the README there). The checker's outputs
 * and exit codes were recorded once ({@code checker/*.txt}, {@code checker/cases.tsv}); for every
 * recorded pair Ferry finds as many problems as the checker counted (its exit code), in the same
 * sections in the same order, and as many warnings. {@link VmstateQemuCheckerLiveTest} runs the
 * checker itself.
 */
class VmstateQemuCheckerTest {
  static final String DIR = "/qemu-vmstate/";

  /** One recorded run of the checker: {@code -s src -d dst}, its exit code (the error count). */
  record Case(String name, String src, String dst, int exit) {
    @Override
    public String toString() {
      return name;
    }
  }

  static List<Case> cases() {
    List<Case> out = new ArrayList<>();
    for (String line : resourceText(DIR + "checker/cases.tsv").split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split("\t");
      out.add(new Case(f[0], f[1], f[2], Integer.parseInt(f[3])));
    }
    return out;
  }

  private static final Map<String, VMStateDump> DUMPS = new HashMap<>();

  static synchronized VMStateDump dump(String file) {
    return DUMPS.computeIfAbsent(file, f -> VmstateJson.parse(gunzip(DIR + f)));
  }

  static String resourceText(String name) {
    try (InputStream in = VmstateQemuCheckerTest.class.getResourceAsStream(name)) {
      assertThat(in).as(name).isNotNull();
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String gunzip(String name) {
    try (InputStream raw = VmstateQemuCheckerTest.class.getResourceAsStream(name)) {
      assertThat(raw).as(name).isNotNull();
      try (InputStream in = new GZIPInputStream(raw)) {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static final Pattern SECTION = Pattern.compile("Section \"([^\"]+)\"");

  /** The section each of the checker's error lines names (its first {@code Section "X"}), in order. */
  static List<String> errorSections(String checkerOutput) {
    List<String> out = new ArrayList<>();
    for (String line : checkerOutput.split("\n")) {
      if (line.isBlank() || line.startsWith("Warning:")) {
        continue;
      }
      Matcher m = SECTION.matcher(line);
      assertThat(m.find()).as("a checker line names its section: %s", line).isTrue();
      out.add(m.group(1));
    }
    return out;
  }

  static long warnings(String checkerOutput) {
    return checkerOutput.lines().filter(l -> l.startsWith("Warning:")).count();
  }

  @Test
  void theRecordedPairsCoverEveryEditBothWays() {
    List<Case> cases = cases();
    assertThat(cases).hasSize(27);
    assertThat(cases).filteredOn(c -> c.exit() == 0).hasSizeBetween(10, 20);
    assertThat(cases).filteredOn(c -> c.exit() > 0).hasSizeGreaterThanOrEqualTo(10);
    VMStateDump base = dump("pc-i440fx-7.2.json.gz");
    assertThat(base.machine()).isEqualTo("pc-i440fx-7.2");
    assertThat(base.sections()).hasSize(213);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void sameVerdictAsQemusChecker(Case c) {
    String recorded = resourceText(DIR + "checker/" + c.name() + ".txt");
    List<VMStateCompat.Finding> findings = VMStateCompat.compare(dump(c.src()), dump(c.dst()));
    List<VMStateCompat.Finding> errors = findings.stream().filter(VMStateCompat.Finding::error).toList();
    assertThat(errors).as("errors; the checker printed:%n%s", recorded).hasSize(c.exit());
    assertThat(errors).extracting(VMStateCompat.Finding::section).as("the checker printed:%n%s", recorded)
        .containsExactlyElementsOf(errorSections(recorded));
    assertThat(findings.stream().filter(f -> !f.error()).count()).isEqualTo(warnings(recorded));
  }

  /** The example of the issue: QEMU's checker does not compare a struct field's size, only its description. */
  @Test
  void aStructsSizeIsNotComparedItsDescriptionIs() {
    assertThat(VMStateCompat.check(dump("pc-i440fx-7.2.json.gz"), dump("edit-struct-sizes.json.gz"))).isEmpty();
    assertThat(VMStateCompat.check(dump("pc-i440fx-7.2.json.gz"), dump("edit-scalar-sizes.json.gz")))
        .containsExactly(
            "section 'mc146818rtc', description 'mc146818rtc', field 'cmos_index': size 1 on the source, 2 on the destination",
            "section 'PIIX3', description 'PCIDevice', field 'version_id': size 4 on the source, 8 on the destination");
  }

  @TempDir Path tmp;

  private Path copy(String file) throws IOException {
    Path p = tmp.resolve(file);
    try (InputStream in = VmstateQemuCheckerTest.class.getResourceAsStream(DIR + file)) {
      Files.copy(in, p);
    }
    return p;
  }

  /** The command reads QEMU's dumps, gzip-compressed as committed, and exits as the checker does (0 or non-zero). */
  @Test
  void theCommandReadsQemusDumps() throws IOException {
    Path base = copy("pc-i440fx-7.2.json.gz");
    Cli.Run same = Cli.ferry("vmstate", "check", base.toString(), copy("edit-into-struct.json.gz").toString());
    assertThat(same.code()).as(same.out() + same.err()).isZero();
    assertThat(same.out()).startsWith("compatible: ");

    Cli.Run machine = Cli.ferry("vmstate", "check", base.toString(), copy("edit-machine-71.json.gz").toString());
    assertThat(machine.code()).isZero();
    assertThat(machine.out()).startsWith(
        "warning: checking different machine types: source 'pc-i440fx-7.2', destination 'pc-i440fx-7.1'\n");

    Cli.Run versions = Cli.ferry("vmstate", "check", base.toString(), copy("edit-versions.json.gz").toString());
    assertThat(versions.code()).isEqualTo(1);
    assertThat(versions.out()).isEqualTo("""
        section 'hpet', description 'hpet': source version 2 is older than the destination's minimum 3
        section 'mc146818rtc': source version 3 is newer than the destination's 2
        section 'mc146818rtc', description 'mc146818rtc': source version 3 is newer than the destination's 2
        3 problems: %s cannot load what %s sends
        """.formatted(tmp.resolve("edit-versions.json.gz"), base));
  }
}
