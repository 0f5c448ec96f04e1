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

  /** What a command printed, and its exit code (null: a command that returns none). */
  public record Captured(Integer exit, String out, String err) {}

  public static Run ferry(String... args) {
    Captured c =
        capture(() -> {
          var cl = FerryMain.commandLine();
          cl.setOut(new java.io.PrintWriter(System.out, true));
          cl.setErr(new java.io.PrintWriter(System.err, true));
          return cl.execute(args);
        });
    return new Run(c.exit(), c.out(), c.err());
  }

  /** Runs {@code command} with System.out and System.err captured (one at a time in this JVM). */
  public static synchronized Captured capture(java.util.function.Supplier<Integer> command) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      Integer exit = command.get();
      System.out.flush();
      System.err.flush();
      return new Captured(exit, withoutAgentLines(out), withoutAgentLines(err));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }
}
