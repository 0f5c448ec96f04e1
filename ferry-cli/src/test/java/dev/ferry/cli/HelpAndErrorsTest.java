package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

/** Every command helps itself; every bad input is one line naming what is wrong, with its exit code. */
class HelpAndErrorsTest {
  @TempDir Path tmp;

  /** Every command path of the tree ({@code [run]}, {@code [vmstate, dump]}, ...), the help commands aside. */
  static List<List<String>> commandPaths() {
    List<List<String>> paths = new ArrayList<>();
    walk(FerryMain.commandLine(), new ArrayList<>(), paths);
    return paths;
  }

  private static void walk(CommandLine cl, List<String> path, List<List<String>> out) {
    for (Map.Entry<String, CommandLine> e : cl.getSubcommands().entrySet()) {
      if (e.getKey().equals("help")) {
        continue;
      }
      List<String> p = new ArrayList<>(path);
      p.add(e.getKey());
      out.add(p);
      walk(e.getValue(), p, out);
    }
  }

  @Test
  void theWalkFindsEveryCommand() {
    assertThat(commandPaths()).contains(List.of("run"), List.of("migrate"), List.of("demo"), List.of("monitor"),
        List.of("analyze"), List.of("vmstate"), List.of("vmstate", "dump"), List.of("vmstate", "check"));
  }

  @ParameterizedTest
  @MethodSource("commandPaths")
  void dashDashHelpAndHelpCommandWorkForEveryCommand(List<String> path) {
    String name = "ferry " + String.join(" ", path);
    List<String> args = new ArrayList<>(path);
    args.add("--help");
    Cli.Run r = Cli.ferry(args.toArray(String[]::new));
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).startsWith("Usage: " + name);
    assertThat(r.err()).isEmpty();
    // "help COMMAND" on the parent: ferry help run, ferry vmstate help dump
    List<String> viaHelp = new ArrayList<>(path.subList(0, path.size() - 1));
    viaHelp.add("help");
    viaHelp.add(path.getLast());
    Cli.Run h = Cli.ferry(viaHelp.toArray(String[]::new));
    assertThat(h.code()).as(String.join(" ", viaHelp) + ": " + h.err()).isZero();
    assertThat(h.out()).startsWith("Usage: " + name);
    assertThat(r.out()).contains("-h, --help");
  }

  static Stream<Arguments> badInputs() {
    return Stream.of(
        // analyze: the path at fault
        Arguments.of(List.of("analyze", "@DIR"), 1, "ferry analyze: @DIR: Is a directory"),
        Arguments.of(List.of("analyze", "@DIR/missing.mig"), 1, "ferry analyze: @DIR/missing.mig: No such file or directory"),
        Arguments.of(List.of("analyze", "@STREAM", "--extract", "/proc/nope"), 1, "ferry analyze: --extract /proc/nope: cannot create the directory"),
        Arguments.of(List.of("analyze", "@STREAM", "--dump", "all"), 1, "ferry analyze: --dump must be 'state' or 'desc', not 'all'"),
        // vmstate check: which file
        Arguments.of(List.of("vmstate", "check", "@DIR/a.json", "@DIR/missing.json"), 2, "ferry vmstate check: @DIR/a.json: No such file or directory"),
        Arguments.of(List.of("vmstate", "check", "@DUMP", "@DIR/missing.json"), 2, "ferry vmstate check: @DIR/missing.json: No such file or directory"),
        Arguments.of(List.of("vmstate", "dump", "--cpu-layout", "x"), 2, "ferry vmstate dump: Invalid value for option '--cpu-layout'"),
        // bad option values exit 2 everywhere, one line
        Arguments.of(List.of("demo", "--memory", "12x"), 2, "ferry demo: Invalid value for option '--memory': '12x' is not a size"),
        Arguments.of(List.of("run", "--memory", "12x"), 2, "ferry run: Invalid value for option '--memory': '12x' is not a size"),
        Arguments.of(List.of("migrate", "--qmp", "unix:x", "--bandwidth", "12x", "tcp:h:1"), 2,
            "ferry migrate: Invalid value for option '--bandwidth': '12x' is not a rate"),
        Arguments.of(List.of("demo", "--dirty-rate", "fast"), 2, "ferry demo: Invalid value for option '--dirty-rate': 'fast' is not a rate"),
        Arguments.of(List.of("demo", "--program", "dance"), 2, "ferry demo: unknown program 'dance'"),
        Arguments.of(List.of("demo", "--transport", "carrier-pigeon"), 2, "ferry demo: unknown transport 'carrier-pigeon'"),
        Arguments.of(List.of("demo", "--warmup-ms", "soon"), 2, "ferry demo: Invalid value for option '--warmup-ms'"),
        Arguments.of(List.of("analyze", "--max-ram", "lots", "x"), 2, "ferry analyze: Invalid value for option '--max-ram'"),
        Arguments.of(List.of("monitor"), 2, "ferry monitor: Missing required parameter: 'URI'"),
        Arguments.of(List.of("vmstate", "bogus"), 2, "ferry vmstate: Unmatched argument at index 1: 'bogus'"),
        Arguments.of(List.of("bogus"), 2, "ferry: Unmatched argument at index 0: 'bogus'"),
        Arguments.of(List.of("monitor", "@DIR/x.qmp"), 2, "ferry monitor: monitor URI must be unix:PATH or tcp:HOST:PORT"),
        Arguments.of(List.of("monitor", "unix:@DIR/none.qmp"), 1, "ferry monitor: cannot reach the QMP monitor unix:@DIR/none.qmp: No such file or directory"));
  }

  @ParameterizedTest
  @MethodSource("badInputs")
  void badInputIsOneLineNamingIt(List<String> args, int code, String message) throws Exception {
    Path stream = tmp.resolve("s.mig");
    Files.write(stream, dev.ferry.testing.Captures.bytes("pc-256M-legacy-nocfg-nofooter", "mig.gz"));
    Path dump = tmp.resolve("d.json");
    Files.writeString(dump, VmstateCommand.dumpOf(dev.ferry.machine.CpuDevice.Layout.V2, 1, null).toJson());
    String[] a = args.stream()
        .map(s -> s.replace("@DIR", tmp.toString()).replace("@STREAM", stream.toString()).replace("@DUMP", dump.toString()))
        .toArray(String[]::new);
    Cli.Run r = Cli.ferry(a);
    String m = message.replace("@DIR", tmp.toString());
    assertThat(r.code()).as(r.err()).isEqualTo(code);
    assertThat(r.err().strip()).as(r.err()).startsWith(m).doesNotContain("\n").doesNotContain("Exception").doesNotContain("\tat ");
  }

  @Test
  void verbosePrintsTheStackTraceOfAnUnexpectedError() {
    Cli.Run quiet = Cli.ferry("vmstate", "dump", "--vcpus", "0");
    assertThat(quiet.code()).isEqualTo(1);
    assertThat(quiet.err().strip()).startsWith("ferry vmstate dump: ").doesNotContain("\n");
    Cli.Run loud = Cli.ferry("vmstate", "dump", "--vcpus", "0", "--verbose");
    assertThat(loud.err()).contains("\tat ");
  }
}
