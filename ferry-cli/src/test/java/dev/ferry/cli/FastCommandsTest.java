package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.testing.Captures;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@link FastCommands}: the plain forms of {@code analyze} and {@code monitor} print exactly what
 * picocli's path prints, with the same exit code, and every other form is left to picocli.
 */
class FastCommandsTest {
  @TempDir Path tmp;

  /** Through picocli, as before the fast path (its writers on System.out and System.err). */
  private static Cli.Captured picocli(String... args) {
    return Cli.capture(() -> {
      CommandLine cl = FerryMain.commandLine();
      cl.setOut(new PrintWriter(System.out, true));
      cl.setErr(new PrintWriter(System.err, true));
      return cl.execute(args);
    });
  }

  /** Through the fast path (null exit: not taken). */
  private static Cli.Captured fast(String... args) {
    return Cli.capture(() -> FastCommands.tryRun(args));
  }



  @Test
  void analyzeFormsPrintWhatPicocliPrints() throws Exception {
    Path stream = Files.write(tmp.resolve("run.mig.gz"), Captures.bytes("pc-256M-run", "mig.gz"));
    Path x1 = tmp.resolve("x1");
    Path x2 = tmp.resolve("x2");
    for (List<String> args : List.of(
        List.of("analyze", stream.toString()),
        List.of("analyze", "--dump", "state", stream.toString()),
        List.of("analyze", stream.toString(), "--dump", "desc"),
        List.of("analyze", "--dump", "nonsense", stream.toString()),
        List.of("analyze", tmp.resolve("missing.mig").toString()))) {
      Cli.Captured viaPicocli = picocli(args.toArray(String[]::new));
      Cli.Captured viaFast = fast(args.toArray(String[]::new));
      assertThat(viaFast).as("%s", args).isEqualTo(viaPicocli);
    }
    Cli.Captured a = picocli("analyze", "--extract", x1.toString(), stream.toString());
    Cli.Captured b = fast("analyze", "--extract", x2.toString(), stream.toString());
    assertThat(b.exit()).isEqualTo(a.exit()).isZero();
    assertThat(b.out()).isEqualTo(a.out());
    for (String f : a.out().strip().split("\n")) {
      assertThat(Files.readAllBytes(x2.resolve(f))).as(f).isEqualTo(Files.readAllBytes(x1.resolve(f)));
    }
  }

  @Test
  void monitorWithoutAMonitorSaysWhatPicocliSays() {
    String uri = "unix:" + tmp.resolve("nobody.qmp");
    assertThat(fast("monitor", uri)).isEqualTo(picocli("monitor", uri));
    assertThat(fast("monitor", "tcp:nohost")).isEqualTo(picocli("monitor", "tcp:nohost"));
  }

  @Test
  void everyOtherFormGoesToPicocli() {
    for (List<String> args : List.of(
        List.<String>of(),
        List.of("analyze"),
        List.of("analyze", "--dump=state", "f"),
        List.of("analyze", "f", "--verbose"),
        List.of("analyze", "f", "g"),
        List.of("analyze", "--dump", "state", "--dump", "desc", "f"),
        List.of("analyze", "--dump", "-x", "f"),
        List.of("analyze", "@args"),
        List.of("analyze", "--help"),
        List.of("monitor"),
        List.of("monitor", "-v", "unix:x"),
        List.of("monitor", "unix:x", "--tls-creds", "d"),
        List.of("monitor", "@args"),
        List.of("vmstate", "dump"),
        List.of("run", "--memory", "1G"))) {
      assertThat(FastCommands.tryRun(args.toArray(String[]::new))).as("%s", args).isNull();
    }
  }
}
