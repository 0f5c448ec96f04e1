package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8 item 6 across processes: a {@code random} guest's stream runs as {@code random} in a
 * destination started without {@code --program}, and a destination started with another program
 * refuses it in one line naming both. (The in-process {@code ProgramTravelsTest} compares the
 * machines exactly.)
 */
class ProgramTravelsCliTest {
  private static final Duration START = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void theProgramTravelsWithTheStream() throws Exception {
    Path srcSock = dir.resolve("src.qmp");
    Path stream = dir.resolve("random.ferry");
    try (FerryProcess src =
        FerryProcess.start(dir, "run", "--memory", "16M", "--program", "random", "--dirty-rate", "8M", "--qmp", "unix:" + srcSock)) {
      src.awaitReady(START);
      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--quiet", "file:" + stream);
      assertThat(mig.exitCode()).as(mig.stderr()).isZero();
      src.terminate();
    }

    FerryProcess pinned = FerryProcess.run(dir, START, "run", "--memory", "16M", "--program", "stress", "--incoming", "file:" + stream);
    assertThat(pinned.exitCode()).as(pinned.stderr()).isEqualTo(1);
    assertThat(pinned.messages().stream().filter(l -> !l.startsWith("ferry: ready")).toList()).containsExactly(
        "ferry run: incoming migration on file:" + stream + " failed: program mismatch: the stream's guest runs program"
            + " 'random', this machine was started with program 'stress'");

    Path dstSock = dir.resolve("dst.qmp");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "16M", "--incoming", "file:" + stream, "--qmp", "unix:" + dstSock)) {
      dst.awaitStderrLine(l -> l.equals(RunCommand.LOADED_PREFIX + "running"), START);
      try (QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        // a stress program on random's registers fails at its first step (internal-error); random runs on
        d.execute("stop");
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("paused");
        d.execute("cont");
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("running");
        d.execute("quit");
      }
      assertThat(dst.waitFor(START)).isZero();
    }
  }
}
