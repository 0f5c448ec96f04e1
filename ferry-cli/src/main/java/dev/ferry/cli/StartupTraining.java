package dev.ferry.cli;

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
 * The training run behind the ahead-of-time cache ({@code bin/ferry} runs it once per build under
 * {@code -XX:AOTCacheOutput}, see README "Start-up"): in this one process it does what fresh
 * processes do, through the same commands, so that the classes they load are in the cache, loaded
 * and linked, with profiles of the methods that ran:
 *
 * <ol>
 *   <li>{@code ferry run} twice (a 32 MiB {@code stress} source and an {@code --incoming} destination
 *       over a unix socket), {@code ferry migrate} between them;
 *   <li>{@code ferry monitor} with one command from stdin, and a QMP command line;
 *   <li>{@code migrate file:} of the destination, then {@code ferry analyze} of that stream: listing,
 *       {@code --dump state}, {@code --dump desc} and {@code --extract};
 *   <li>{@code ferry vmstate dump}, {@code --help} and {@code --version}.
 * </ol>
 *
 * Nothing it does is timed or checked beyond "exit code 0": a failed step ends the training with
 * exit code 1 and the launcher runs without a cache. Usage: {@code StartupTraining DIR} (an empty
 * scratch directory).
 */
public final class StartupTraining {
  private StartupTraining() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: StartupTraining DIR");
      System.exit(2);
    }
    FerryMain.configureLogging();
    int code;
    try {
      code = train(Path.of(args[0]));
    } catch (Exception e) {
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  private static int train(Path dir) throws Exception {
    Files.createDirectories(dir);
    String srcQmp = "unix:" + dir.resolve("src.qmp");
    String dstQmp = "unix:" + dir.resolve("dst.qmp");
    String incoming = "unix:" + dir.resolve("mig.sock");
    CompletableFuture<Integer> dst = runAsync("dst", "run", "--memory", "32M", "--incoming", incoming, "--paused", "--qmp", dstQmp);
    CompletableFuture<Integer> src = runAsync("src", "run", "--memory", "32M", "--program", "stress", "--qmp", srcQmp);
    try {
      awaitMonitor(srcQmp, src);
      awaitMonitor(dstQmp, dst);
      step("migrate", FerryMain.execute("migrate", "--qmp", srcQmp, "--quiet", incoming));
      step("monitor", monitor(dstQmp, "info status\ninfo migrate\n{\"execute\": \"query-status\"}\ncont\ninfo stress\n"));
      Path stream = dir.resolve("dst.mig");
      step("monitor", monitor(dstQmp, "stop\nmigrate file:" + stream + "\ninfo migrate\n"));
      step("analyze", FerryMain.execute("analyze", stream.toString()));
      step("analyze --dump state", FerryMain.execute("analyze", "--dump", "state", stream.toString()));
      step("analyze --dump desc", FerryMain.execute("analyze", "--dump", "desc", stream.toString()));
      step("analyze --extract", FerryMain.execute("analyze", "--extract", dir.resolve("extract").toString(), stream.toString()));
      step("vmstate dump", FerryMain.execute("vmstate", "dump"));
      step("--version", FerryMain.execute("--version"));
      step("monitor --help", FerryMain.execute("monitor", "--help"));
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
