package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.live.FerryChild;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The AOT cache logic of {@code bin/launcher.sh} (sourced by {@code bin/ferry}): its key follows
 * what the JVM checks a cache against, the commands fall into the right group, and a cache the JVM
 * cannot use (missing, empty, garbage, truncated, a directory) never breaks a command nor adds a
 * byte to its output, with exactly the options the launcher and {@link FerryChild} pass.
 */
class LauncherAotTest {
  @TempDir Path tmp;

  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();

  /** Runs {@code script} in bash after sourcing the launcher; returns its stdout (trimmed). */
  private static String bash(String script, Map<String, String> env) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder("bash", "-c",
        "set -euo pipefail; JAVA_HOME=\"$1\"; . \"$2/bin/launcher.sh\"; " + script, "bash",
        System.getProperty("java.home"), ROOT.toString());
    pb.environment().remove("FERRY_JAVA_OPTS");
    pb.environment().putAll(env);
    pb.redirectErrorStream(true);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isZero();
    return out.strip();
  }

  private String key(String cp, String group, Map<String, String> env) throws Exception {
    return bash("ferry_aot_key '" + cp + "' " + group, env);
  }

  @Test
  void keyFollowsJarsGroupAndOptions() throws Exception {
    Path a = Files.writeString(tmp.resolve("a.jar"), "a");
    Path b = Files.writeString(tmp.resolve("b.jar"), "b");
    String cp = a + ":" + b;
    String k = key(cp, "short", Map.of());
    assertThat(k).matches("[0-9a-f]{16}");
    assertThat(key(cp, "short", Map.of())).as("stable").isEqualTo(k);
    assertThat(key(cp, "run", Map.of())).as("group").isNotEqualTo(k);
    assertThat(key(b + ":" + a, "short", Map.of())).as("class path order").isNotEqualTo(k);
    assertThat(key(cp, "short", Map.of("FERRY_JAVA_OPTS", "-Xmx2g"))).as("options").isNotEqualTo(k);
    Files.setLastModifiedTime(b, FileTime.fromMillis(Files.getLastModifiedTime(b).toMillis() - 10_000));
    assertThat(key(cp, "short", Map.of())).as("a jar's time").isNotEqualTo(k);
    String k2 = key(cp, "short", Map.of());
    Files.writeString(b, "bb");
    Files.setLastModifiedTime(b, FileTime.fromMillis(Files.getLastModifiedTime(a).toMillis() - 10_000));
    assertThat(key(cp, "short", Map.of())).as("a jar's size").isNotEqualTo(k2);
  }

  /** The key file spares the hashing, never a change: it is the key, or it is made afresh. */
  @Test
  void keyFileStandsOnlyWhileNothingChanged() throws Exception {
    Path a = Files.writeString(tmp.resolve("a.jar"), "a");
    Path b = Files.writeString(tmp.resolve("b.jar"), "b");
    Path dir = tmp.resolve("aot");
    String cp = a + ":" + b;
    String cached = "ferry_aot_key_cached '" + cp + "' short '" + dir + "' ferry-short; echo $FERRY_AOT_KEY";
    String k = bash(cached, Map.of());
    assertThat(k).isEqualTo(key(cp, "short", Map.of()));
    assertThat(Files.readAllLines(dir.resolve("ferry-short.key")).get(0)).isEqualTo(k);
    assertThat(bash(cached, Map.of())).as("from the file").isEqualTo(k);
    // a stale key in the file is used while nothing is newer than the file ...
    Path file = dir.resolve("ferry-short.key");
    List<String> lines = Files.readAllLines(file);
    FileTime t = Files.getLastModifiedTime(file);
    Files.write(file, List.of("0123456789abcdef", lines.get(1)));
    Files.setLastModifiedTime(file, t);
    assertThat(bash(cached, Map.of())).isEqualTo("0123456789abcdef");
    // ... and dropped when a jar is newer, or the options differ
    Files.setLastModifiedTime(b, FileTime.fromMillis(t.toMillis() + 5_000));
    String k2 = bash(cached, Map.of());
    assertThat(k2).isEqualTo(key(cp, "short", Map.of())).isNotEqualTo("0123456789abcdef");
    assertThat(bash("ferry_aot_key_cached '" + cp + "' short '" + dir + "' ferry-short; echo $FERRY_AOT_KEY",
        Map.of("FERRY_JAVA_OPTS", "-Xmx2g"))).isEqualTo(key(cp, "short", Map.of("FERRY_JAVA_OPTS", "-Xmx2g")));
    assertThat(bash(cached, Map.of())).isEqualTo(k2);
  }

  /** dpkg, rpm and tar keep a package's mtimes: an upgrade in place is seen by its release file's text. */
  @Test
  void anUpgradeInPlaceOfTheJdkDropsTheKeyFileThoughItsFilesAreOlder() throws Exception {
    FileTime old = FileTime.fromMillis(1_000_000_000_000L);
    Path jdk = Files.createDirectories(tmp.resolve("jdk"));
    Path release = Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"25.0.1\"\nIMPLEMENTOR=\"x\"\n");
    Files.setLastModifiedTime(release, old);
    for (String f : List.of("lib/modules", "lib/server/libjvm.so")) {
      Path p = Files.writeString(Files.createDirectories(jdk.resolve(f).getParent()).resolve(jdk.resolve(f).getFileName()), f);
      Files.setLastModifiedTime(p, old);
    }
    Path a = Files.writeString(tmp.resolve("a.jar"), "a");
    Files.setLastModifiedTime(a, old);
    Path dir = tmp.resolve("aot");
    String cached = "JAVA_HOME='" + jdk + "'; ferry_aot_key_cached '" + a + "' short '" + dir
        + "' ferry-short; echo $FERRY_AOT_KEY";
    String k1 = bash(cached, Map.of());
    assertThat(bash(cached, Map.of())).as("from the file").isEqualTo(k1);
    Files.writeString(release, "JAVA_VERSION=\"25.0.2\"\nIMPLEMENTOR=\"x\"\n");
    Files.setLastModifiedTime(release, old);
    String k2 = bash(cached, Map.of());
    assertThat(k2).isNotEqualTo(k1)
        .isEqualTo(bash("JAVA_HOME='" + jdk + "'; ferry_aot_key '" + a + "' short", Map.of()));
  }

  @Test
  void commandsFallIntoTheirGroups() throws Exception {
    String groups = bash("for c in analyze monitor vmstate help --help -V --version '' run migrate demo soak; do"
        + " printf '%s=%s ' \"$c\" $(ferry_command_group ferry-cli \"$c\"); done;"
        + " printf 'kv=%s' $(ferry_command_group ferry-kv analyze)", Map.of());
    assertThat(groups).isEqualTo("analyze=analyze monitor=monitor vmstate=short help=short --help=short -V=short"
        + " --version=short =short run=run migrate=run demo=run soak=run kv=run");
  }

  @Test
  void classPathIsSortedJars() throws Exception {
    Path target = Files.createDirectories(tmp.resolve("m/target/lib"));
    for (String n : List.of("zeta-1.jar", "Alpha-2.jar", "beta-3.jar")) {
      Files.writeString(target.resolve(n), n);
    }
    assertThat(bash("ferry_classpath '" + target.getParent() + "' m", Map.of()))
        .isEqualTo(String.join(":", target.getParent() + "/m.jar", target + "/Alpha-2.jar", target + "/beta-3.jar",
            target + "/zeta-1.jar"));
  }

  @Test
  void childrenGetTheLaunchersOptions() throws Exception {
    Path cache = Files.writeString(tmp.resolve("c.aot"), "x");
    List<String> launcher = Arrays.asList(bash("ferry_aot_opts '" + cache + "'", Map.of()).split("\n"));
    assertThat(FerryChild.aotOptions(cache.toString())).isEqualTo(launcher);
    assertThat(FerryChild.aotOptions(tmp.resolve("missing.aot").toString())).isEmpty();
    assertThat(FerryChild.aotOptions(null)).isEmpty();
  }

  /** A cache the JVM cannot use: the command runs as without one, its output unchanged. */
  @Test
  void unusableCacheNeverBreaksACommand() throws Exception {
    Path garbage = Files.writeString(tmp.resolve("garbage.aot"), "not a cache\n");
    Path empty = Files.createFile(tmp.resolve("empty.aot"));
    Path dir = Files.createDirectories(tmp.resolve("dir.aot"));
    // the start of a real cache: the JDK's own CDS archive, cut short
    Path cds = Path.of(System.getProperty("java.home"), "lib", "server", "classes.jsa");
    Path truncated = tmp.resolve("truncated.aot");
    byte[] head = Files.exists(cds) ? Arrays.copyOf(Files.readAllBytes(cds), 4096) : new byte[4096];
    Files.write(truncated, head);
    String expected = run(List.of());
    assertThat(expected).startsWith("ferry ");
    for (Path c : List.of(garbage, empty, dir, truncated, tmp.resolve("missing.aot"))) {
      List<String> opts = Arrays.asList(bash("ferry_aot_opts '" + c + "'", Map.of()).split("\n"));
      assertThat(run(opts)).as(c.getFileName().toString()).isEqualTo(expected);
    }
  }

  /** {@code ferry --version} in a new JVM with {@code opts}: stdout and stderr, which must be empty. */
  private String run(List<String> opts) throws Exception {
    List<String> argv = new ArrayList<>();
    argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    argv.addAll(opts);
    argv.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.ferry.cli.FerryMain", "--version"));
    Process p = new ProcessBuilder(argv).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("exit code with %s: %s", opts, err).isZero();
    assertThat(err).as("stderr with %s", opts).isEmpty();
    return out;
  }
}
