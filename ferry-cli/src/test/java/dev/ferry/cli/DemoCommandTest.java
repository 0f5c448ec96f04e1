package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.cli.live.Units;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class DemoCommandTest {
  record Run(int code, String err) {}

  static Run demo(String... args) {
    String[] all = new String[args.length + 1];
    all[0] = "demo";
    System.arraycopy(args, 0, all, 1, args.length);
    Cli.Run r = Cli.ferry(all);
    return new Run(r.code(), r.err());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
    "--memory|12x|is not a size",
    "--memory|1000B|multiple of 4 KiB",
    "--program|dance|unknown program 'dance'",
    "--transport|carrier-pigeon|unknown transport 'carrier-pigeon'",
    "--downtime-limit|-1|--downtime-limit must not be negative",
    "--working-set|3K|multiple of 4 KiB",
    "--working-set-base|100|--working-set-base must be a non-negative multiple of 4 KiB",
  })
  void badOptionsFailWithOneLine(String option, String value, String message) {
    Run r = demo(option, value);
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().strip()).contains(message).doesNotContain("\n").doesNotContain("Exception");
  }

  /** The spec a command line makes, without running the demo. */
  static dev.ferry.cli.live.LiveMigration.Spec spec(String... args) {
    DemoCommand d = new DemoCommand();
    new picocli.CommandLine(d).parseArgs(args);
    return d.spec();
  }

  @Test
  void specDefaultsToAOneGibStressGuestOverTcp() {
    var s = spec();
    assertThat(s.memoryBytes()).isEqualTo(1L << 30);
    assertThat(s.program()).isEqualTo("stress");
    assertThat(s.transport()).isEqualTo(Transport.TCP);
    assertThat(s.destinationPaused()).as("paused until its digest is taken").isTrue();
  }

  @Test
  void workingSetOptionsReachTheMachines() {
    var s = spec("--program", "workingset", "--working-set", "16M", "--working-set-base", "1M");
    assertThat(s.program()).isEqualTo("workingset");
    assertThat(s.workingSetBytes()).isEqualTo(16L << 20);
    assertThat(s.workingSetBaseBytes()).isEqualTo(1L << 20);
    assertThat(spec().workingSetBytes()).as("the program's default").isNull();
  }

  /** A small demo end to end: the report has the exact comparison row and the guest runs on. */
  @Test
  void smallDemoReportsTheDigestComparison() {
    Cli.Run r = Cli.ferry("demo", "--memory", "32M", "--program", "fill", "--transport", "unix", "--warmup-ms", "100");
    String report = r.out();
    assertThat(r.code()).as(r.err() + report).isZero();
    assertThat(report)
        .containsPattern("  digest +equal   stopped source = destination before it ran \\(crc32c-4k ram [0-9a-f]{16}, devices [0-9a-f]{16}, ")
        .contains("ferry demo: OK");
  }

  /** Drives on both machines, moved by block migration while the disk program writes them. */
  @Test
  void demoWithDrivesChecksTheDisks() {
    Cli.Run r = Cli.ferry("demo", "--memory", "16M", "--program", "disk", "--drive", "id=d0,size=6M", "--drive", "id=d1,size=2560K",
        "--dirty-rate", "16M", "--transport", "unix", "--warmup-ms", "100");
    String report = r.out();
    assertThat(r.code()).as(r.err() + report).isZero();
    assertThat(report)
        .containsPattern("  disk check +passed   9 records verified on 2 drives \\(block migration\\)")
        .containsPattern("(?m)^  disk +[0-9.]+ MiB +of 8.5 MiB in all disks, 0 B remaining$")
        .containsPattern("(?m)^  disk bulk +[0-9.]+ [KMG]?i?B/s +[0-9.]+ MiB in ")
        .contains("ferry demo: OK");
  }

  /** --block-incremental: the chunks still zero on the source are not sent; the JSON report has the disk figures. */
  @Test
  void incrementalDemoReportsTheDiskInJson() throws Exception {
    Cli.Run r = Cli.ferry("demo", "--memory", "16M", "--program", "idle", "--drive", "id=d0,size=6M", "--block-incremental",
        "--transport", "unix", "--warmup-ms", "100", "--json");
    assertThat(r.code()).as(r.err() + r.out()).isZero();
    var disk = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out()).path("disk");
    assertThat(disk.path("total-bytes").asLong()).isEqualTo(6L << 20);
    assertThat(disk.path("transferred-bytes").asLong()).as("an idle guest's fresh disk is all zeros: nothing to send").isZero();
    assertThat(disk.path("remaining-bytes").asLong()).isZero();
  }

  @Test
  void multifdDemoSendsPagesOverItsChannels() throws Exception {
    Cli.Run r = Cli.ferry("demo", "--memory", "16M", "--program", "stress", "--multifd-channels", "2",
        "--multifd-compression", "zstd", "--transport", "unix", "--warmup-ms", "100", "--json");
    assertThat(r.code()).as(r.err() + r.out()).isZero(); // the demo fails unless the digests are equal
    var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
    assertThat(report.findValue("multifd-bytes").asLong()).as(r.out()).isPositive();
  }

  @Test
  void badMultifdOptionsFailWithOneLine() {
    assertThat(demo("--multifd-channels", "0").err()).contains("--multifd-channels must be 1 to 255, got 0");
    assertThat(demo("--multifd-compression", "lz4").err()).contains("--multifd-compression must be none, zlib or zstd, got lz4");
    assertThat(demo("--multifd-channels", "2", "--transport", "exec").err())
        .contains("--multifd-channels needs the tcp or unix transport, not exec");
  }

  @Test
  void badDriveOptionsFailWithOneLine() {
    Run r = demo("--drive", "id=d0");
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err().strip()).contains("bad --drive 'id=d0': needs id=NAME and size=SIZE").doesNotContain("\n");
    assertThat(demo("--shared-storage").err()).contains("--shared-storage needs --drive");
    assertThat(demo("--block").err()).contains("--block needs --drive");
    assertThat(demo("--drive", "id=d0,size=1M", "--shared-storage", "--block-incremental").err())
        .contains("--shared-storage moves no disk data: drop --block-incremental");
  }

  @Test
  void sizesFollowTheOneGrammarOfFerryRun() {
    assertThat(spec("--memory", "64").memoryBytes()).isEqualTo(64L << 20); // bare number: MiB, as ferry run
    assertThat(spec("--memory", "512MiB").memoryBytes()).isEqualTo(512L << 20);
    assertThat(spec("--dirty-rate", "512K/s").dirtyRateBytesPerSec()).isEqualTo(512L << 10);
    assertThat(spec("--bandwidth", "0").maxBandwidthBytesPerSec()).isZero(); // unlimited, as migrate
    assertThat(spec("--bandwidth", "64M/s").maxBandwidthBytesPerSec()).isEqualTo(64L << 20);
    // the same text fails with the same message in demo, run and migrate
    String demo = demo("--memory", "64Q").err().strip();
    Cli.Run run = Cli.ferry("run", "--memory", "64Q");
    assertThat(demo.substring(demo.indexOf("Invalid value"), demo.indexOf(" (see")))
        .isEqualTo(run.err().strip().substring(run.err().strip().indexOf("Invalid value"), run.err().strip().indexOf(" (see")));
  }

  @Test
  void unitsAreBinary() {
    assertThat(Units.bytes(1L << 30)).isEqualTo("1 GiB");
    assertThat(Units.bytes(534.2 * (1 << 20))).isEqualTo("534 MiB");
    assertThat(Units.bytes(12.34 * (1 << 20))).isEqualTo("12.3 MiB");
    assertThat(Units.bytes(812)).isEqualTo("812 B");
    assertThat(Units.count(262144)).isEqualTo("262 144");
  }
}
