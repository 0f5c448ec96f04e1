package dev.ferry.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs {@code ferry ARGS} in this JVM, capturing stdout, stderr and the exit code. */
public final class Cli {
  public record Run(int code, String out, String err) {}

  private Cli() {}

  /**
   * The captured text without the lines the fuzzing agent of this test JVM prints when it
   * instruments a class loaded meanwhile ({@code INFO: Instrumented ...}): they are not Ferry's.
   */
  private static String withoutAgentLines(ByteArrayOutputStream b) {
    return b.toString(StandardCharsets.UTF_8).lines()
        .filter(l -> !l.startsWith("INFO: Instrumented "))
        .map(l -> l + "\n")
        .collect(java.util.stream.Collectors.joining());
  }

  public static synchronized Run ferry(String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      var cl = FerryMain.commandLine();
      cl.setOut(new java.io.PrintWriter(System.out, true));
      cl.setErr(new java.io.PrintWriter(System.err, true));
      int code = cl.execute(args);
      return new Run(code, withoutAgentLines(out), withoutAgentLines(err));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }
}
