package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.FerryProcess;
import dev.ferry.cli.RunCommand;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mapped-ram} across processes: {@code ferry run --mapped-ram} + {@code ferry migrate
 * --mapped-ram file:F}, then {@code ferry run --mapped-ram --incoming file:F} (exact digest);
 * {@code ferry analyze F} lists each block's header and bitmap summary and {@code --extract}
 * rebuilds RAM; a destination without the capability and a tcp: URI are refused in one line.
 * Slow (five JVMs); {@link MappedRamAnalyzeTest} covers the analyzer in process.
 */
@Tag("slow")
@Timeout(180)
class MappedRamCliTest {
  private static final Duration START = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void migrateIntoAMappedRamFileLoadItAndAnalyzeIt() throws Exception {
    Path srcSock = dir.resolve("src.qmp");
    Path file = dir.resolve("stress.mapped");
    MemoryDigest source;
    try (FerryProcess src = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "stress", "--mapped-ram",
        "--qmp", "unix:" + srcSock)) {
      src.awaitReady(START);
      FerryProcess tcp = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--quiet", "tcp:127.0.0.1:9");
      assertThat(tcp.exitCode()).as(tcp.stderr()).isNotZero();
      assertThat(tcp.stderr()).contains("Migration requires seekable transport (e.g. file)");
      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--quiet", "--mapped-ram", "file:" + file);
      assertThat(mig.exitCode()).as(mig.stderr()).isZero();
      try (QmpClient s = QmpClient.connect("unix:" + srcSock)) {
        source = MemoryDigestInfo.fromJson(s.execute("ferry-memory-digest"));
        s.execute("quit");
      }
      assertThat(src.waitFor(START)).isZero();
    }
    // 16 MiB of RAM, its 512-byte bitmap and the 1 MiB alignment, and a little stream around them
    assertThat(Files.size(file)).isBetween(17L << 20, (17L << 20) + (64 << 10));

    FerryProcess plain = FerryProcess.run(dir, START, "run", "--memory", "16M", "--incoming", "file:" + file);
    assertThat(plain.exitCode()).as(plain.stderr()).isEqualTo(1);
    assertThat(plain.stderr()).contains("validated capabilities differ: stream [mapped-ram], here []");

    Path dstSock = dir.resolve("dst.qmp");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "16M", "--mapped-ram", "--incoming", "file:" + file, "-S",
        "--qmp", "unix:" + dstSock)) {
      dst.awaitStderrLine(l -> l.equals(RunCommand.LOADED_PREFIX + "paused"), START);
      try (QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        MemoryDigest destination = MemoryDigestInfo.fromJson(d.execute("ferry-memory-digest"));
        assertThat(source.firstDifference(destination)).as("stopped source vs destination").isEmpty();
        d.execute("quit");
      }
      assertThat(dst.waitFor(START)).isZero();
    }

    AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry("analyze", file.toString());
    assertThat(r.exit()).as(r.err()).isZero();
    assertThat(r.out())
        .contains("CONFIG   machine 'ferry-1.1' capabilities [mapped-ram]")
        .containsPattern("MAPPED-RAM +block 'ram' length 0x1000000: header version 1, page size 0x1000, bitmap at 0x[0-9a-f]+ \\(0x200 bytes\\), pages at 0x100000")
        .contains("MAPPED-RAM   block 'ram' pages: 4096 of 4096 present (0 absent: zero)");
    Path x = dir.resolve("x");
    AnalyzeCommandTest.Run e = AnalyzeCommandTest.ferry("analyze", file.toString(), "--extract", x.toString());
    assertThat(e.exit()).as(e.err()).isZero();
    byte[] ram = Files.readAllBytes(x.resolve("ram"));
    assertThat(ram).hasSize(16 << 20);
    // the stress pattern: the first byte of every page is its pass counter, all equal but one step
    int first = ram[0] & 0xff;
    for (int p = 0; p < 4096; p++) {
      int v = ram[p * 4096] & 0xff;
      assertThat(v == first || v == ((first - 1) & 0xff) || v == ((first + 1) & 0xff)).as("page %d: %d vs %d", p, v, first).isTrue();
    }
  }
}
