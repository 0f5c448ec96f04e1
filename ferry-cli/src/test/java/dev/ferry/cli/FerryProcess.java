package dev.ferry.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A {@code ferry} command in a separate JVM, for system tests: the same java binary and class path
 * as the test, native access enabled, {@link FerryMain} as the main class. Its stdout and stderr are
 * captured (stderr also line by line, so a test can wait for {@code ferry run}'s ready line).
 *
 * <pre>{@code
 * try (FerryProcess src = FerryProcess.start(dir, "run", "--memory", "32M", "--qmp", "unix:" + sock)) {
 *   Map<String, String> ready = src.awaitReady(Duration.ofSeconds(60));
 *   ...
 * }
 * }</pre>
 *
 * {@link #close} kills a process still running (and waits for it).
 */
public final class FerryProcess implements AutoCloseable {
  private final Process process;
  private final List<String> args;
  private final StringBuilder stdout = new StringBuilder();
  private final List<String> stderrLines = new ArrayList<>();
  private final Thread outPump;
  private final Thread errPump;

  private FerryProcess(Process process, List<String> args) {
    this.process = process;
    this.args = args;
    this.outPump = Thread.ofPlatform().daemon().start(() -> pump(process.getInputStream(), false));
    this.errPump = Thread.ofPlatform().daemon().start(() -> pump(process.getErrorStream(), true));
  }

  /** The command line that runs {@code ferry ARGS} with this test's JVM and class path. */
  public static List<String> commandLine(String... ferryArgs) {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> cmd = new ArrayList<>();
    cmd.add(java);
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-Xmx256m");
    cmd.add("-XX:+UseSerialGC");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(FerryMain.class.getName());
    cmd.addAll(List.of(ferryArgs));
    return cmd;
  }

  /** Starts {@code ferry ARGS} in {@code workDir}. */
  public static FerryProcess start(Path workDir, String... ferryArgs) throws IOException {
    List<String> cmd = commandLine(ferryArgs);
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile());
    return new FerryProcess(pb.start(), List.of(ferryArgs));
  }

  /** Runs {@code ferry ARGS} to its end (killed after {@code timeout}). */
  public static FerryProcess run(Path workDir, Duration timeout, String... ferryArgs)
      throws IOException, InterruptedException {
    FerryProcess p = start(workDir, ferryArgs);
    p.waitFor(timeout);
    return p;
  }

  private void pump(InputStream in, boolean err) {
    try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        synchronized (this) {
          if (err) {
            stderrLines.add(line);
          } else {
            stdout.append(line).append('\n');
          }
          notifyAll();
        }
      }
    } catch (IOException e) {
      // the process is gone
    }
  }

  public Process process() {
    return process;
  }

  public long pid() {
    return process.pid();
  }

  /** Waits for the end (killing the process after {@code timeout}) and returns its exit code. */
  public int waitFor(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      process.destroyForcibly();
      process.waitFor();
      throw new AssertionError("ferry " + args + " did not end within " + timeout + "; stderr:\n" + stderr());
    }
    outPump.join(5000);
    errPump.join(5000);
    return process.exitValue();
  }

  /** Exit code of an ended process. */
  public int exitCode() {
    return process.exitValue();
  }

  public synchronized String stdout() {
    return stdout.toString();
  }

  public synchronized String stderr() {
    return String.join("\n", stderrLines) + (stderrLines.isEmpty() ? "" : "\n");
  }

  /** Stderr without the log lines (slf4j-simple's {@code [thread] LEVEL ...}). */
  public synchronized List<String> messages() {
    return stderrLines.stream().filter(l -> !l.startsWith("[")).toList();
  }

  /** Waits for a stderr line matching {@code p}; fails (with the stderr so far) on time-out or exit. */
  public String awaitStderrLine(Predicate<String> p, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    int seen = 0;
    synchronized (this) {
      while (true) {
        for (; seen < stderrLines.size(); seen++) {
          if (p.test(stderrLines.get(seen))) {
            return stderrLines.get(seen);
          }
        }
        long left = end - System.nanoTime();
        if (left <= 0 || (!process.isAlive() && !errPump.isAlive())) {
          throw new AssertionError(
              "ferry " + args + ": no such stderr line (alive=" + process.isAlive() + "); stderr:\n" + stderr());
        }
        wait(Math.max(1, Math.min(200, left / 1_000_000)));
      }
    }
  }

  /** Waits for {@code ferry run}'s ready line and returns its {@code key=value} fields. */
  public Map<String, String> awaitReady(Duration timeout) throws InterruptedException {
    return parseFields(awaitStderrLine(l -> l.startsWith(RunCommand.READY_PREFIX), timeout));
  }

  /** The {@code key=value} fields of a {@code ferry: ...; k=v; k=v} line. */
  public static Map<String, String> parseFields(String line) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String part : line.split("; ")) {
      int eq = part.indexOf('=');
      if (eq > 0) {
        m.put(part.substring(0, eq), part.substring(eq + 1));
      }
    }
    return m;
  }

  /** Sends SIGTERM (a clean shutdown for {@code ferry run}). */
  public void terminate() {
    process.destroy();
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      process.destroyForcibly();
      try {
        process.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
