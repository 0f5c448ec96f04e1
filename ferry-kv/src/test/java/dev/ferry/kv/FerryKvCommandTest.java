package dev.ferry.kv;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.FerryMain;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The command line's errors: one line naming the value and {@code --help}, exit code 2. */
class FerryKvCommandTest {
  private static String[] run(String... args) {
    PrintStream saved = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code;
    try {
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      code = FerryMain.executeCommand(new FerryKvCommand(), args);
    } finally {
      System.setErr(saved);
    }
    return new String[] {Integer.toString(code), err.toString(StandardCharsets.UTF_8).strip()};
  }

  @Test
  void badOptionsAreOneLineAndExitCode2() {
    String[] r = run("--port", "70000");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).isEqualTo("ferry-kv: --port must be 0..65535, got 70000 (see 'ferry-kv --help')");
    r = run("--memory", "12x");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).startsWith("ferry-kv: ").contains("12x").endsWith("(see 'ferry-kv --help')").doesNotContain("\n");
    r = run("--workers", "0");
    assertThat(r[1]).isEqualTo("ferry-kv: --workers must be 1..64, got 0 (see 'ferry-kv --help')");
    r = run("--incoming", "bogus:x");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).startsWith("ferry-kv: bad --incoming URI 'bogus:x'").doesNotContain("\n");
  }
}
