package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Ctrl-C during {@code ferry demo} removes its temp dir and its child processes. */
class DemoInterruptTest {
  @TempDir Path tmp;

  private List<Path> liveDirs() throws Exception {
    try (Stream<Path> s = Files.list(tmp)) {
      return s.filter(p -> p.getFileName().toString().startsWith("ferry-live-")).toList();
    }
  }

  /** Processes whose command line names the temp dir, the demo itself aside. */
  private long childrenAlive(long demoPid) {
    return ProcessHandle.allProcesses()
        .filter(p -> p.pid() != demoPid)
        .filter(p -> p.info().arguments().map(a -> String.join(" ", a).contains(tmp.toString())).orElse(false))
        .count();
  }

  @Test
  void ctrlCRemovesTheTempDirAndTheChildren() throws Exception {
    List<String> cmd = new java.util.ArrayList<>(FerryProcess.commandLine(
        "demo", "--memory", "16M", "--program", "idle", "--transport", "unix", "--warmup-ms", "600000"));
    cmd.add(1, "-Djava.io.tmpdir=" + tmp);
    Process demo = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("demo.out").toFile()).start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      // wait until both children run: the source's monitor socket exists (the destination started first)
      while (liveDirs().isEmpty() || !Files.exists(liveDirs().getFirst().resolve("source.qmp"))) {
        assertThat(demo.isAlive()).as(Files.readString(tmp.resolve("demo.out"))).isTrue();
        assertThat(System.nanoTime() < deadline).as("demo did not start its source").isTrue();
        Thread.sleep(50);
      }
      assertThat(childrenAlive(demo.pid())).isEqualTo(2);
      Process kill = new ProcessBuilder("kill", "-INT", Long.toString(demo.pid())).start();
      assertThat(kill.waitFor()).isZero();
      assertThat(demo.waitFor(60, TimeUnit.SECONDS)).as("demo exits on SIGINT").isTrue();
      assertThat(liveDirs()).as(Files.readString(tmp.resolve("demo.out"))).isEmpty();
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (childrenAlive(demo.pid()) > 0 && System.nanoTime() < end) {
        Thread.sleep(50);
      }
      assertThat(childrenAlive(demo.pid())).isZero();
    } finally {
      demo.destroyForcibly();
    }
  }
}
