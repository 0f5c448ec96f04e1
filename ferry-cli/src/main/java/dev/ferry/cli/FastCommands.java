package dev.ferry.cli;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.nio.file.Path;

/**
 * The plain forms of the commands that must start like native tools, run without building
 * picocli's model: {@code ferry monitor URI} and {@code ferry analyze [--dump state|desc]
 * [--extract DIR] FILE}. Picocli's classes are compiled for Java 5, which JDK 25's AOT cache does
 * not keep, so in a fresh JVM building its model (reflection, annotation proxies) cost these
 * commands more than everything else they do. Only command lines made of exactly these tokens take
 * this path, with the same command objects, output streams and error lines; anything else (other
 * options, {@code --opt=value}, {@code @file} arguments, help, a value that looks like an option)
 * goes to picocli, which stays the parser of record.
 */
final class FastCommands {
  private FastCommands() {}

  /** Runs {@code args} when it is one of the plain forms and returns its exit code; null otherwise. */
  static Integer tryRun(String... args) {
    if (args.length < 2) {
      return null;
    }
    return switch (args[0]) {
      case "monitor" -> monitor(args);
      case "analyze" -> analyze(args);
      default -> null;
    };
  }

  private static Integer monitor(String[] args) {
    if (args.length != 2 || !plain(args[1])) {
      return null;
    }
    MonitorCommand m = new MonitorCommand();
    m.uri = args[1];
    try {
      return m.call();
    } catch (Exception e) {
      // as FerryMain's execution exception handler
      System.err.println("ferry monitor: " + CliErrors.describe(e));
      System.err.flush();
      return 1;
    }
  }

  private static Integer analyze(String[] args) {
    AnalyzeCommand a = new AnalyzeCommand();
    for (int i = 1; i < args.length; i++) {
      String t = args[i];
      if ((t.equals("--dump") || t.equals("--extract")) && i + 1 < args.length && plain(args[i + 1])) {
        String v = args[++i];
        if (t.equals("--dump") && a.dump == null) {
          a.dump = v;
        } else if (t.equals("--extract") && a.extractDir == null) {
          a.extractDir = Path.of(v);
        } else {
          return null; // given twice: picocli says what it says
        }
      } else if (plain(t) && a.file == null) {
        a.file = Path.of(t);
      } else {
        return null;
      }
    }
    if (a.file == null) {
      return null;
    }
    PrintWriter out = writer(System.out, "sun.stdout.encoding");
    PrintWriter err = writer(System.err, "sun.stderr.encoding");
    try {
      return a.run(out, err);
    } finally {
      out.flush();
      err.flush();
    }
  }

  /** A token picocli would take as a plain value: not an option, not an {@code @file}, no path trouble. */
  private static boolean plain(String t) {
    return !t.isEmpty() && !t.startsWith("-") && !t.startsWith("@") && t.indexOf('\0') < 0;
  }

  /** The writer picocli would make for {@code stream} (its charset rule: the property, else the default). */
  private static PrintWriter writer(PrintStream stream, String encodingProperty) {
    String enc = System.getProperty(encodingProperty);
    Charset cs = Charset.defaultCharset();
    if (enc != null) {
      try {
        cs = Charset.forName(enc.equalsIgnoreCase("cp65001") ? "UTF-8" : enc);
      } catch (RuntimeException e) {
        // picocli falls back to the default as well
      }
    }
    return new PrintWriter(new BufferedWriter(new OutputStreamWriter(stream, cs)), true);
  }
}
