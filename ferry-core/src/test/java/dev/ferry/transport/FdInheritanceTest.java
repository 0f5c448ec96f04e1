package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * fd: as it is meant to be used: this process makes a socket pair, starts a child JVM that inherits
 * one end as its descriptor 3 ({@link InheritedFds#spawn}), and migrates a stream to it; the child
 * answers over the return path.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FdInheritanceTest {
  @TempDir Path tmp;

  @Test
  void childInheritsASocketAsFd3() throws Exception {
    int[] pair = InheritedFds.socketPair();
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Path log = tmp.resolve("child.log");
    InheritedFds.ChildProcess child =
        InheritedFds.spawn(
            List.of(
                java,
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                FdEchoChild.class.getName(),
                "fd:3"),
            Map.of(3, pair[1]),
            log);
    InheritedFds.close(pair[1]); // the child has its own copy now
    try {
      byte[] data = new byte[8 << 20];
      new Random(7).nextBytes(data);
      byte[] answer = new byte[32];
      try (MigrationChannel ch = Transports.connect("fd:" + pair[0])) {
        assertThat(ch.supportsReturnPath()).isTrue();
        MigrationOutput out = new MigrationOutput(ch);
        out.writeBe64(data.length).writeBytes(data).flush();
        new MigrationInput(ch).readFully(answer, 0, answer.length);
      }
      assertThat(answer).isEqualTo(MessageDigest.getInstance("SHA-256").digest(data));
      assertThat(child.awaitExit(60_000)).as("child exit code; its output: %s", readLog(log)).isZero();
    } finally {
      child.kill();
    }
  }

  @Test
  void theChildSeesNoOtherDescriptorsOfOurs() throws Exception {
    int[] pair = InheritedFds.socketPair(); // close-on-exec: must not reach the child
    try {
      Path log = tmp.resolve("ls.log");
      InheritedFds.ChildProcess child =
          InheritedFds.spawn(List.of("/bin/sh", "-c", "ls /proc/self/fd"), Map.of(), log);
      assertThat(child.awaitExit(30_000)).isZero();
      // sh's own descriptors: 0, 1, 2 and the one ls uses to read the directory
      assertThat(Files.readAllLines(log)).hasSizeLessThanOrEqualTo(4);
    } finally {
      InheritedFds.close(pair[0]);
      InheritedFds.close(pair[1]);
    }
  }

  private static String readLog(Path log) {
    try {
      return Files.readString(log);
    } catch (java.io.IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }
}
