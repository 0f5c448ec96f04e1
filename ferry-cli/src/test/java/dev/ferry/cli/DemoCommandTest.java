package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.cli.live.Units;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class DemoCommandTest {
  record Run(int code, String err) {}

  static Run demo(String... args) {
    PrintStream old = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      String[] all = new String[args.length + 1];
      all[0] = "demo";
      System.arraycopy(args, 0, all, 1, args.length);
      return new Run(FerryMain.execute(all), buf.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(old);
    }
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
    "--memory|12x|bad size '12x'",
    "--memory|1000|multiple of 4 KiB",
    "--program|dance|unknown program 'dance'",
    "--transport|carrier-pigeon|unknown transport 'carrier-pigeon'",
    "--bandwidth|0|--bandwidth must be positive",
  })
  void badOptionsFailWithOneLine(String option, String value, String message) {
    Run r = demo(option, value);
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().strip()).contains(message).doesNotContain("\n").doesNotContain("Exception");
  }

  @Test
  void specDefaultsToAOneGibStressGuestOverTcp() {
    DemoCommand d = new DemoCommand();
    d.memory = "1G";
    d.program = "stress";
    d.transport = "tcp";
    var s = d.spec();
    assertThat(s.memoryBytes()).isEqualTo(1L << 30);
    assertThat(s.transport()).isEqualTo(Transport.TCP);
    assertThat(s.destinationPaused()).as("paused until its digest is taken").isTrue();
  }

  /** A small demo end to end: the report has the exact comparison row and the guest runs on. */
  @Test
  void smallDemoReportsTheDigestComparison() {
    PrintStream oldOut = System.out;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    Run r;
    try {
      r = demo("--memory", "32M", "--program", "fill", "--transport", "unix", "--warmup-ms", "100");
    } finally {
      System.setOut(oldOut);
    }
    String report = out.toString(StandardCharsets.UTF_8);
    assertThat(r.code()).as(r.err() + report).isZero();
    assertThat(report)
        .containsPattern("  digest +equal   stopped source = destination before it ran \\(crc32c-4k ram [0-9a-f]{16}, devices [0-9a-f]{16}, ")
        .contains("ferry demo: OK");
  }

  @Test
  void unitsAreBinaryAndExact() {
    assertThat(Units.bytes(1L << 30)).isEqualTo("1.00 GiB");
    assertThat(Units.bytes(534.2 * (1 << 20))).isEqualTo("534 MiB");
    assertThat(Units.bytes(12.34 * (1 << 20))).isEqualTo("12.3 MiB");
    assertThat(Units.bytes(812)).isEqualTo("812 B");
    assertThat(Units.count(262144)).isEqualTo("262 144");
    assertThat(Units.parseSize("1G")).isEqualTo(1L << 30);
    assertThat(Units.parseSize("512MiB")).isEqualTo(512L << 20);
    assertThat(Units.parseSize("64k")).isEqualTo(64L << 10);
    assertThat(Units.parseSize("4096")).isEqualTo(4096);
  }
}
