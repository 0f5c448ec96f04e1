package dev.ferry.cli;

import dev.ferry.cli.live.FerryChild;
import dev.ferry.qmp.QmpClient;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The training runs behind the ahead-of-time caches ({@code bin/ferry} runs one under {@code
 * -XX:AOTCacheOutput} when a cache is missing, see README "Start-up"): in one process it does what
 * fresh processes do, through the same commands, so that the classes they load are in the cache,
 * loaded and linked, with profiles of the methods that ran. A JDK 25 cache loads all of its classes
 * when the JVM starts, so the short commands get a cache of their own that holds no engine:
 *
 * <ul>
 *   <li>{@code monitor} ({@code ferry monitor}): a {@code ferry run} child process serves the
 *       monitor, and in this process {@code ferry monitor} runs scripts from stdin (HMP lines, a QMP
 *       line, an unknown command, {@code quit}).
 *   <li>{@code analyze} ({@code ferry analyze}): the child saves its machine with {@code migrate
 *       file:} (told by a {@code ferry monitor} child), and {@code ferry analyze} reads that stream (listing,
 *       {@code --dump state}, {@code --dump desc}, {@code --extract}).
 *   <li>{@code short} (vmstate, help, version): {@code --version} and the help texts. Not {@code
 *       vmstate dump}: it builds machines, and every class in the cache is loaded at each start.
 *   <li>{@code run} (run, migrate, demo, soak): two {@code ferry run} in this process (a 32 MiB
 *       {@code stress} source and an {@code --incoming --paused} destination over a unix socket),
 *       {@code ferry migrate} between them, {@code ferry monitor} on both, and {@code quit}.
 * </ul>
 *
 * Nothing it does is timed or checked beyond "exit code 0": a failed step ends the training with
 * exit code 1 and the launcher runs without a cache. Usage: {@code StartupTraining short|monitor|run DIR}
 * (DIR: an empty scratch directory).
 */
public final class StartupTraining {
  private StartupTraining() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2 || !List.of("short", "monitor", "analyze", "run").contains(args[0])) {
      System.err.println("usage: StartupTraining short|monitor|analyze|run DIR");
      System.exit(2);
    }
    FerryMain.configureLogging();
    int code;
    try {
      Path dir = Path.of(args[1]);
      Files.createDirectories(dir);
      code = switch (args[0]) {
        case "short" -> trainShort(dir);
        case "monitor" -> trainMonitor(dir);
        case "analyze" -> trainAnalyze(dir);
        default -> trainRun(dir);
      };
    } catch (Exception e) {
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  private static int trainShort(Path dir) throws Exception {
    step("--version", FerryMain.execute("--version"));
    step("--help", FerryMain.execute("--help"));
    step("monitor --help", FerryMain.execute("monitor", "--help"));
    step("analyze --help", FerryMain.execute("analyze", "--help"));
    step("vmstate --help", FerryMain.execute("vmstate", "--help"));
    return 0;
  }

  /** {@code ferry analyze} of a stream a {@code ferry run} child saved: listing, dumps, extraction. */
  private static int trainAnalyze(Path dir) throws Exception {
    Path stream = dir.resolve("run.mig");
    // the monitor in a child process too: only analyze's classes go into this cache
    withRunChild(dir, qmp -> {
      List<String> argv = new ArrayList<>(FerryChild.ferryCommand());
      argv.addAll(List.of("monitor", qmp));
      Process m = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(dir.resolve("monitor.log").toFile()).start();
      try (var in = m.getOutputStream()) {
        in.write(("stop\nmigrate file:" + stream + "\ninfo migrate\nquit\n").getBytes(StandardCharsets.UTF_8));
      }
      if (!m.waitFor(60, TimeUnit.SECONDS)) {
        m.destroyForcibly();
        throw new IOException("training: ferry monitor did not end");
      }
      step("monitor (child)", m.exitValue());
    });
    for (int i = 0; i < 2; i++) {
      step("analyze", FerryMain.execute("analyze", stream.toString()));
      step("analyze --dump state", FerryMain.execute("analyze", "--dump", "state", stream.toString()));
      step("analyze --dump desc", FerryMain.execute("analyze", "--dump", "desc", stream.toString()));
      step("analyze --extract", FerryMain.execute("analyze", "--extract", dir.resolve("extract").toString(), stream.toString()));
    }
    return 0;
  }

  /** {@code ferry monitor URI} alone: HMP lines and a QMP line from stdin, as scripts send them. */
  private static int trainMonitor(Path dir) throws Exception {
    withRunChild(dir, qmp -> {
      for (int i = 0; i < 3; i++) {
        step("monitor", monitor(qmp, "info status\ninfo migrate\n{\"execute\": \"query-status\"}\nhelp\nnosuchcommand\n") == 1 ? 0 : 1);
      }
      step("monitor", monitor(qmp, "info status\nquit\n"));
    });
    return 0;
  }

  private interface MonitorSteps {
    void run(String qmpUri) throws Exception;
  }

  /** Runs {@code steps} against a {@code ferry run} child process, which they must quit. */
  private static void withRunChild(Path dir, MonitorSteps steps) throws Exception {
    String qmp = "unix:" + dir.resolve("run.qmp");
    // a plain child process (not FerryChild's posix_spawn, whose libc bindings would join this cache)
    List<String> argv = new ArrayList<>(FerryChild.ferryCommand());
    argv.addAll(List.of("run", "--memory", "32M", "--program", "stress", "--qmp", qmp));
    Process run = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(dir.resolve("run.log").toFile()).start();
    try {
      CompletableFuture<Integer> exit = new CompletableFuture<>();
      run.onExit().thenAccept(p -> exit.complete(p.exitValue()));
      awaitMonitor(qmp, exit);
      steps.run(qmp);
      if (!run.waitFor(60, TimeUnit.SECONDS)) {
        throw new IOException("training: the ferry run child did not quit");
      }
    } finally {
      run.destroyForcibly();
    }
  }

  private static int trainRun(Path dir) throws Exception {
    String srcQmp = "unix:" + dir.resolve("src.qmp");
    String dstQmp = "unix:" + dir.resolve("dst.qmp");
    String incoming = "unix:" + dir.resolve("mig.sock");
    CompletableFuture<Integer> dst = runAsync("dst", "run", "--memory", "32M", "--incoming", incoming, "--paused", "--qmp", dstQmp);
    CompletableFuture<Integer> src = runAsync("src", "run", "--memory", "32M", "--program", "stress", "--qmp", srcQmp);
    try {
      awaitMonitor(srcQmp, src);
      awaitMonitor(dstQmp, dst);
      step("migrate", FerryMain.execute("migrate", "--qmp", srcQmp, "--quiet", incoming));
      step("monitor", monitor(dstQmp, "info status\ninfo migrate\ncont\ninfo stress\n"));
      step("monitor", monitor(srcQmp, "info status\ninfo migrate\n"));
    } finally {
      quit(srcQmp);
      quit(dstQmp);
    }
    step("src run", src.get(60, TimeUnit.SECONDS));
    step("dst run", dst.get(60, TimeUnit.SECONDS));
    return 0;
  }

  /** {@code ferry ARGS} on its own thread (as {@code ferry run} blocks until quit). */
  private static CompletableFuture<Integer> runAsync(String name, String... args) {
    CompletableFuture<Integer> f = new CompletableFuture<>();
    Thread.ofPlatform().name("training-" + name).start(() -> {
      try {
        f.complete(FerryMain.execute(args));
      } catch (Throwable t) {
        f.completeExceptionally(t);
      }
    });
    return f;
  }

  private static void awaitMonitor(String uri, CompletableFuture<Integer> run) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      try (QmpClient c = QmpClient.connect(uri)) {
        c.execute("query-status");
        return;
      } catch (IOException e) {
        if (run.isDone() || System.nanoTime() - deadline > 0) {
          throw new IOException("training: no monitor at " + uri + (run.isDone() ? " (ferry run ended with " + run.get() + ")" : ""), e);
        }
        Thread.sleep(20);
      }
    }
  }

  /** {@code ferry monitor URI} with {@code script} on stdin. */
  private static int monitor(String uri, String script) {
    InputStream in = System.in;
    System.setIn(new ByteArrayInputStream(script.getBytes(StandardCharsets.UTF_8)));
    try {
      return FerryMain.execute("monitor", uri);
    } finally {
      System.setIn(in);
    }
  }

  private static void quit(String uri) {
    try (QmpClient c = QmpClient.connect(uri)) {
      c.execute("quit");
    } catch (Exception e) {
      // already gone
    }
  }

  private static final List<String> DONE = new ArrayList<>();

  private static void step(String what, int code) throws IOException {
    if (code != 0) {
      throw new IOException("training step '" + what + "' exited with " + code + " (after " + DONE + ")");
    }
    DONE.add(what);
  }
}
