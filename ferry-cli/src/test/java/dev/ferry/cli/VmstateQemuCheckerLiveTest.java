package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.machine.MachineType;
import dev.ferry.vmstate.VMStateCompat;
import dev.ferry.vmstate.VMStateDump;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs QEMU 7.2's {@code vmstate-static-checker.py} itself (fetched by {@code
 * get-qemu-tools.sh}: set {@code ORACLE_DIR} or leave it in {@code $TMPDIR/qemu-tools}; skipped,
 * saying so, without it or without python3): on every recorded pair it prints what was recorded
 * and exits as recorded, and on the dumps of Ferry's own machine types it counts what Ferry counts.
 */
@Tag("slow")
class VmstateQemuCheckerLiveTest {
  @TempDir Path tmp;

  private static Path checker() {
    String dir = System.getenv().getOrDefault("ORACLE_DIR", System.getProperty("java.io.tmpdir") + "/qemu-tools");
    Path p = Path.of(dir, "vmstate-static-checker.py");
    assumeTrue(Files.isRegularFile(p), "QEMU's vmstate-static-checker.py not found at " + p + " (run get-qemu-tools.sh)");
    return p;
  }

  record Run(int exit, String out) {}

  private static Run run(Path checker, Path src, Path dst) throws IOException, InterruptedException {
    Process p;
    try {
      p = new ProcessBuilder("python3", checker.toString(), "-s", src.toString(), "-d", dst.toString())
          .redirectErrorStream(true)
          .start();
    } catch (IOException e) {
      assumeTrue(false, "python3 not runnable: " + e.getMessage());
      throw e;
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Run(p.exitValue(), out);
  }

  private Path plain(String file) throws IOException {
    Path p = tmp.resolve(file.replace(".gz", ""));
    if (!Files.exists(p)) {
      Files.writeString(p, VmstateQemuCheckerTest.gunzip(VmstateQemuCheckerTest.DIR + file));
    }
    return p;
  }

  @Test
  void theCheckerStillSaysWhatWasRecorded() throws Exception {
    Path checker = checker();
    for (VmstateQemuCheckerTest.Case c : VmstateQemuCheckerTest.cases()) {
      Run r = run(checker, plain(c.src()), plain(c.dst()));
      assertThat(r.exit()).as(c.name()).isEqualTo(c.exit());
      assertThat(r.out()).as(c.name())
          .isEqualTo(VmstateQemuCheckerTest.resourceText(VmstateQemuCheckerTest.DIR + "checker/" + c.name() + ".txt"));
    }
  }

  @Test
  void onFerrysMachineTypesTheCheckerCountsWhatFerryCounts() throws Exception {
    Path checker = checker();
    List<MachineType> types = MachineType.ALL;
    for (MachineType s : types) {
      for (MachineType d : types) {
        VMStateDump src = VmstateCommand.dumpOf(s, null, 2, null);
        VMStateDump dst = VmstateCommand.dumpOf(d, null, 2, null);
        Path sp = tmp.resolve(s.name() + ".json");
        Path dp = tmp.resolve(d.name() + ".json");
        Files.writeString(sp, src.toJson());
        Files.writeString(dp, dst.toJson());
        Run r = run(checker, sp, dp);
        List<VMStateCompat.Finding> findings = VMStateCompat.compare(src, dst);
        assertThat(findings.stream().filter(VMStateCompat.Finding::error).count())
            .as("%s -> %s; the checker printed:%n%s", s.name(), d.name(), r.out())
            .isEqualTo(r.exit());
        assertThat(findings.stream().filter(VMStateCompat.Finding::error).map(VMStateCompat.Finding::section).toList())
            .isEqualTo(VmstateQemuCheckerTest.errorSections(r.out()));
      }
    }
  }
}
