package dev.ferry.cli.live;

import dev.ferry.qmp.QmpClient;
import dev.ferry.transport.InheritedFds;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code ferry run} child process of this JVM (same java, same class path, native access on):
 * started with {@link InheritedFds#spawn} so that it can inherit descriptors for the {@code fd:}
 * transport; its stdout and stderr go to a log file, where {@link #awaitReady} finds the "ready"
 * line. Every child is killed when this JVM exits (normally, by an exception or by Ctrl-C), and by
 * {@link #close}.
 */
public final class FerryChild implements AutoCloseable {
  private static final Set<FerryChild> LIVE = ConcurrentHashMap.newKeySet();
  private static final Pattern READY = Pattern.compile("(?i)\\bready\\b");
  private static final Pattern INCOMING = Pattern.compile("(?i)incoming[\\s=:]+((tcp|unix|exec|fd|file):\\S+)");

  static {
    Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().unstarted(() -> LIVE.forEach(FerryChild::kill)));
  }

  private final String name;
  private final InheritedFds.ChildProcess process;
  private final Path log;
  private final String qmpUri;
  private QmpClient qmp;
  private String readyLine;

  private FerryChild(String name, InheritedFds.ChildProcess process, Path log, String qmpUri) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.qmpUri = qmpUri;
  }

  /** System property naming the ahead-of-time cache this JVM started with ({@code bin/ferry} sets it). */
  public static final String AOT_CACHE_PROPERTY = "ferry.aot.cache";

  /**
   * The command that starts {@code dev.ferry.cli.FerryMain} in a JVM like this one: same java, same
   * class path, and the same AOT cache when this JVM was started with one ({@link
   * #AOT_CACHE_PROPERTY}; the cache was made for this java and class path, and a cache the child's
   * JVM cannot use is ignored without a word, as in {@code bin/ferry}).
   */
  public static List<String> ferryCommand() {
    String java = ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> argv = new ArrayList<>();
    argv.add(java);
    argv.addAll(aotOptions(System.getProperty(AOT_CACHE_PROPERTY)));
    argv.add("--enable-native-access=ALL-UNNAMED");
    argv.add("-cp");
    argv.add(System.getProperty("java.class.path"));
    argv.add("dev.ferry.cli.FerryMain");
    return argv;
  }

  /**
   * The JVM options that use {@code cache} (none when null or not a file): the ones {@code
   * bin/launcher.sh}'s {@code ferry_aot_opts} gives, which {@code LauncherAotTest} checks.
   */
  public static List<String> aotOptions(String cache) {
    if (cache == null || cache.isEmpty() || !Files.isRegularFile(Path.of(cache))) {
      return List.of();
    }
    return List.of("-XX:AOTCache=" + cache, "-Xlog:aot=off", "-Xlog:cds=off", "-XX:+UnlockDiagnosticVMOptions",
        "-XX:ArchiveRelocationMode=0", "-D" + AOT_CACHE_PROPERTY + "=" + cache);
  }

  /**
   * Starts {@code ferry run ARGS --qmp QMP}; child descriptor k is a copy of this process's {@code
   * fds.get(k)}.
   */
  public static FerryChild start(String name, List<String> runArgs, String qmpUri, Map<Integer, Integer> fds, Path log)
      throws IOException {
    List<String> args = new ArrayList<>();
    args.add("run");
    args.addAll(runArgs);
    return startMain(name, "dev.ferry.cli.FerryMain", args, qmpUri, fds, log);
  }

  /**
   * Starts another of Ferry's programs that runs a machine as {@code ferry run} does (ferry-kv):
   * {@code mainClass ARGS --qmp QMP} in a JVM like this one, with its class path.
   */
  public static FerryChild startMain(String name, String mainClass, List<String> args, String qmpUri, Map<Integer, Integer> fds, Path log)
      throws IOException {
    List<String> argv = ferryCommand();
    argv.set(argv.size() - 1, mainClass);
    argv.addAll(args);
    argv.add("--qmp");
    argv.add(qmpUri);
    InheritedFds.ChildProcess p = InheritedFds.spawn(argv, fds, log);
    FerryChild c = new FerryChild(name, p, log, qmpUri);
    LIVE.add(c);
    return c;
  }

  public String name() {
    return name;
  }

  public long pid() {
    return process.pid();
  }

  public Path log() {
    return log;
  }

  /** Still running? */
  public boolean alive() {
    try {
      return process.exitCodeNow() < 0;
    } catch (IOException e) {
      return false;
    }
  }

  /** The exit code, or -1 while it runs. */
  public int exitCodeNow() {
    try {
      return process.exitCodeNow();
    } catch (IOException e) {
      return -1;
    }
  }

  /** Waits for the exit (throws IOException when still running after {@code timeout}). */
  public int awaitExit(Duration timeout) throws IOException, InterruptedException {
    return process.awaitExit(timeout.toMillis());
  }

  /**
   * Waits until the child printed its "ready" line and returns it.
   *
   * @throws IOException when the child exits first (with its last output) or after {@code timeout}
   */
  public String awaitReady(Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (readyLine == null) {
      for (String line : lines()) {
        if (READY.matcher(line).find()) {
          readyLine = line;
          return line;
        }
      }
      if (!alive()) {
        throw new IOException(name + " exited with " + exitCodeNow() + " before it was ready: " + lastLine());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IOException(name + " not ready after " + timeout.toMillis() + " ms: " + lastLine());
      }
      Thread.sleep(10);
    }
    return readyLine;
  }

  /** The incoming URI the ready line names (a tcp port 0 resolved), or null. */
  public String boundIncomingUri() {
    if (readyLine == null) {
      return null;
    }
    Matcher m = INCOMING.matcher(readyLine);
    return m.find() ? m.group(1) : null;
  }

  /** The child's output so far, line by line. */
  public List<String> lines() {
    try {
      return Files.readAllLines(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return List.of();
    }
  }

  /** The last non-blank line of output (for one-line errors). */
  public String lastLine() {
    List<String> l = lines();
    for (int i = l.size() - 1; i >= 0; i--) {
      if (!l.get(i).isBlank()) {
        return l.get(i).strip();
      }
    }
    return "(no output)";
  }

  /** The QMP monitor, connected on first use (retrying while the child starts). */
  public synchronized QmpClient qmp() throws IOException, InterruptedException {
    if (qmp == null) {
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (true) {
        try {
          qmp = QmpClient.connect(qmpUri);
          break;
        } catch (IOException e) {
          if (!alive()) {
            throw new IOException(name + " exited with " + exitCodeNow() + ": " + lastLine(), e);
          }
          if (System.nanoTime() - deadline > 0) {
            throw new IOException(name + ": no QMP monitor at " + qmpUri + ": " + e.getMessage(), e);
          }
          Thread.sleep(20);
        }
      }
    }
    return qmp;
  }

  /**
   * SIGKILL to the child and its descendants (an {@code exec:} transport's command would otherwise
   * outlive a killed child); a no-op once it exited.
   */
  public void kill() {
    ProcessHandle.of(pid()).ifPresent(h -> h.descendants().forEach(ProcessHandle::destroyForcibly));
    process.kill();
  }

  /** Closes the monitor, kills the child and reaps it. */
  @Override
  public void close() {
    QmpClient q;
    synchronized (this) {
      q = qmp;
      qmp = null;
    }
    if (q != null) {
      try {
        q.close();
      } catch (IOException e) {
        // the child goes away anyway
      }
    }
    kill();
    try {
      process.awaitExit(10_000);
    } catch (IOException e) {
      // not reaped: the kernel reparents it to init when we exit
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    LIVE.remove(this);
  }

  @Override
  public String toString() {
    return name + " (pid " + pid() + ")";
  }
}
