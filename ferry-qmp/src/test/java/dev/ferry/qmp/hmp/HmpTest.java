package dev.ferry.qmp.hmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.qmp.Sizes;
import dev.ferry.qmp.FakeBackends;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.qapi.ConvergenceInfo;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.machine.RunState;
import dev.ferry.qmp.qapi.StatusInfo;
import java.time.ZoneOffset;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** HMP output compared with what QEMU 7.2 prints for the same answers. */
class HmpTest {
  Hmp hmp;

  @BeforeEach
  void setUp() {
    hmp = new QmpDispatcher(FakeBackends.fake()).hmp();
    hmp.setZone(ZoneOffset.UTC);
  }

  @Test
  void infoStatusAsQemuPrintsIt() {
    assertThat(hmp.execute("info status")).isEqualTo("VM status: running\n");
    assertThat(HmpFormatter.infoStatus(StatusInfo.of(RunState.PAUSED))).isEqualTo("VM status: paused\n");
    assertThat(HmpFormatter.infoStatus(StatusInfo.of(RunState.POSTMIGRATE)))
        .isEqualTo("VM status: paused (postmigrate)\n");
    assertThat(hmp.execute("stop")).isEmpty();
    assertThat(hmp.executeForQmp("info status")).isEqualTo("VM status: paused\r\n");
    assertThat(hmp.execute("c")).isEmpty();
  }

  @Test
  void infoMigrateAsQemuPrintsIt() {
    assertThat(hmp.execute("info migrate"))
        .isEqualTo(
            "globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\n"
                + "send-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n");
    MigrationInfo active =
        new MigrationInfo(
            MigrationStatus.ACTIVE,
            new MigrationStats(
                10_485_760, 2_097_152, 1_073_741_824, 250_000, 0, 2_560, 10_485_760, 1200, 838.8608,
                3, 0, 4096, 0, 25_600, 10_485_760, 0, 0, 0),
            1234L,
            7L,
            null,
            300L,
            null,
            null);
    assertThat(HmpFormatter.infoMigrate(active))
        .endsWith(
            "clear-bitmap-shift: 18\n"
                + "Migration status: active\n"
                + "total time: 1234 ms\n"
                + "expected downtime: 300 ms\n"
                + "setup: 7 ms\n"
                + "transferred ram: 10240 kbytes\n"
                + "throughput: 838.86 mbps\n"
                + "remaining ram: 2048 kbytes\n"
                + "total ram: 1048576 kbytes\n"
                + "duplicate: 250000 pages\n"
                + "skipped: 0 pages\n"
                + "normal: 2560 pages\n"
                + "normal bytes: 10240 kbytes\n"
                + "dirty sync count: 3\n"
                + "page size: 4 kbytes\n"
                + "multifd bytes: 0 kbytes\n"
                + "pages-per-second: 25600\n"
                + "dirty pages rate: 1200 pages\n"
                + "precopy ram: 10240 kbytes\n");
    MigrationInfo failed =
        new MigrationInfo(MigrationStatus.FAILED, null, 10L, null, null, null, "Connection refused", null);
    assertThat(HmpFormatter.infoMigrate(failed))
        .endsWith("Migration status: failed (Connection refused)\ntotal time: 10 ms\n");
  }

  @Test
  void theDowntimeGuardShowsInQueryMigrateAndInfoMigrate() {
    ConvergenceInfo guard = new ConvergenceInfo(true, 1_000_000, 8_000_000, 2, null, 512, true);
    MigrationInfo active = new MigrationInfo(MigrationStatus.ACTIVE, null, 900L, 5L, null, 40L, null, null, null, null,
        null, null, guard);
    assertThat(HmpFormatter.infoMigrate(active))
        .contains("expected downtime: 40 ms\n")
        .endsWith("downtime guard (ferry): refused, expected 512 ms, 2 refusals\n");
    com.fasterxml.jackson.databind.JsonNode json = active.toJson().path("ferry-convergence");
    assertThat(json.path("downtime-guard-refusals").asLong()).isEqualTo(2);
    assertThat(json.path("downtime-guard-expected-downtime").asLong()).isEqualTo(512);
    assertThat(json.path("downtime-guard-last").asText()).isEqualTo("refused");
    assertThat(ConvergenceInfo.fromJson(json)).isEqualTo(guard);
    assertThat(active.toJson().path("expected-downtime").asLong()).as("QEMU's member untouched").isEqualTo(40);
    ConvergenceInfo none = new ConvergenceInfo(true, 1, 1, 0, null);
    assertThat(none.toJson().has("downtime-guard-last")).as("absent before the guard ran").isFalse();
    assertThat(HmpFormatter.infoMigrate(new MigrationInfo(MigrationStatus.ACTIVE, null, 900L, 5L, null, 40L, null,
        null, null, null, null, null, none))).doesNotContain("downtime guard");
  }

  @Test
  void capabilitiesAndParameters() {
    assertThat(hmp.execute("migrate_set_capability events on")).isEmpty();
    assertThat(hmp.execute("info migrate_capabilities"))
        .startsWith("xbzrle: off\nrdma-pin-all: off\nauto-converge: off\nzero-blocks: off\ncompress: off\nevents: on\n")
        .endsWith("zero-copy-send: off\npostcopy-preempt: off\nmapped-ram: off\nferry-auto-postcopy: off\n");
    assertThat(hmp.execute("migrate_set_capability warp on"))
        .isEqualTo("Error: unknown migration capability 'warp' (see 'info migrate_capabilities')\n");
    assertThat(hmp.execute("migrate_set_capability events maybe")).isEqualTo("Expected 'on' or 'off'\n");
    assertThat(hmp.execute("info migrate_parameters"))
        .isEqualTo(
            "cpu-throttle-tailslow: off\n"
                + "tls-creds: ''\n"
                + "max-bandwidth: 134217728 bytes/second\n"
                + "downtime-limit: 300 ms\n"
                + "multifd-compression: none\n"
                + "xbzrle-cache-size: 67108864 bytes\n"
                + "max-postcopy-bandwidth: 0\n");
    assertThat(hmp.execute("migrate_set_speed 1G")).isEmpty();
    assertThat(hmp.execute("info migrate_parameters")).contains("max-bandwidth: 1073741824 bytes/second\n");
    assertThat(hmp.execute("migrate_set_speed 32")).isEmpty(); // bare number: MiB
    assertThat(hmp.execute("info migrate_parameters")).contains("max-bandwidth: 33554432 bytes/second\n");
    assertThat(hmp.execute("migrate_set_parameter max-bandwidth 100k")).isEmpty();
    assertThat(hmp.execute("info migrate_parameters")).contains("max-bandwidth: 102400 bytes/second\n");
    assertThat(hmp.execute("migrate_set_parameter xbzrle-cache-size 4096")).isEmpty(); // bare: bytes
    assertThat(hmp.execute("info migrate_parameters")).contains("xbzrle-cache-size: 4096 bytes\n");
    assertThat(hmp.execute("migrate_set_parameter downtime-limit 50")).isEmpty();
    assertThat(hmp.execute("migrate_set_parameter cpu-throttle-tailslow on")).isEmpty();
    assertThat(hmp.execute("info migrate_parameters")).contains("downtime-limit: 50 ms\n", "cpu-throttle-tailslow: on\n");
    assertThat(hmp.execute("migrate_set_parameter downtime-limit 9999999"))
        .isEqualTo("Error: Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds\n");
    assertThat(hmp.execute("migrate_set_parameter nosuch 5"))
        .isEqualTo("Error: unknown migration parameter 'nosuch' (see 'info migrate_parameters')\n");
    assertThat(hmp.execute("migrate_set_parameter max-bandwidth lots")).isEqualTo("Error: Invalid size lots\n");
  }

  @Test
  void migrateAndSnapshots() {
    assertThat(hmp.execute("migrate -d tcp:127.0.0.1:4444")).isEmpty();
    assertThat(hmp.execute("migrate unix:/tmp/x")).isEmpty(); // waits until completed
    assertThat(hmp.execute("migrate rdma:x")).isEqualTo("Error: unknown migration protocol: rdma:x\n");
    assertThat(hmp.execute("migrate")).isEqualTo("migrate: uri expected\n");
    assertThat(hmp.execute("migrate_incoming tcp:0:4444")).isEmpty();
    assertThat(hmp.execute("migrate_cancel")).isEmpty();
    assertThat(hmp.execute("migrate_start_postcopy"))
        .isEqualTo("Error: Enable postcopy with migrate_set_capability before the start of migration\n");
    assertThat(hmp.execute("info snapshots")).isEqualTo("There is no snapshot available.\n");
    assertThat(hmp.execute("savevm snap0")).isEmpty();
    assertThat(hmp.execute("info snapshots"))
        .isEqualTo(
            "List of snapshots present on all disks:\n"
                + "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n"
                + "--        snap0            1.37 MiB 2023-11-14 22:13:20 01:02:03.456           \n");
    assertThat(hmp.execute("loadvm snap0")).isEmpty();
    assertThat(hmp.execute("loadvm nope")).isEqualTo("Error: Snapshot 'nope' does not exist\n");
    assertThat(hmp.execute("delvm snap0")).isEmpty();
    assertThat(hmp.execute("bogus")).isEqualTo("unknown command: 'bogus'\n");
    assertThat(hmp.execute("help migrate_set_speed")).startsWith("migrate_set_speed value -- set maximum speed");
    assertThat(hmp.execute("help")).contains("cont|c -- resume emulation\n");
    assertThat(hmp.execute("info")).contains("info status  -- show the current VM status (running|paused)\n");
  }

  @Test
  void sizesAndTokens() {
    assertThat(Sizes.parse("1.5K", 'B')).isEqualTo(1536);
    assertThat(Sizes.parse("10", 'M')).isEqualTo(10L << 20);
    assertThat(Sizes.parse("2g", 'B')).isEqualTo(2L << 30);
    assertThat(Sizes.parse("512b", 'M')).isEqualTo(512);
    assertThatThrownBy(() -> Sizes.parse("1.5B", 'B')).isInstanceOf(NumberFormatException.class);
    assertThatThrownBy(() -> Sizes.parse("9E", 'B')).isInstanceOf(NumberFormatException.class);
    assertThat(Sizes.human(0)).isEqualTo("0 B");
    assertThat(Sizes.human(512)).isEqualTo("512 B");
    assertThat(Sizes.human(1000)).isEqualTo("0.977 KiB");
    assertThat(Sizes.human(935_329_792)).isEqualTo("892 MiB");
    assertThat(Sizes.human(2_684_354_560L)).isEqualTo("2.5 GiB");
    assertThat(Hmp.tokenize("savevm \"a b\"  'c\\d'")).containsExactly("savevm", "a b", "c\\d");
  }

  @Test
  void helpListsQuitAndInfoBogusSaysSo() {
    assertThat(hmp.execute("help")).contains("quit|q -- quit the emulator\n", "calc_dirty_rate second");
    assertThat(hmp.execute("help q")).startsWith("quit|q -- quit the emulator");
    String bogus = hmp.execute("info bogus");
    assertThat(bogus).startsWith("Error: unknown info subcommand 'bogus'; the info subcommands are:\n")
        .contains("info status  -- ", "info version  -- ", "info cpus  -- ", "info registers  -- ", "info dirty_rate  -- ");
    assertThat(Hmp.isError(bogus)).isTrue();
  }

  @Test
  void failuresAreRecognisedForTheConsolesExitStatus() {
    assertThat(Hmp.isError(hmp.execute("bogus"))).isTrue();
    assertThat(Hmp.isError(hmp.execute("migrate"))).isTrue(); // migrate: uri expected
    assertThat(Hmp.isError(hmp.execute("stop now"))).isTrue(); // extraneous characters
    assertThat(Hmp.isError(hmp.execute("migrate_set_capability events maybe"))).isTrue();
    assertThat(Hmp.isError(hmp.execute("migrate_set_speed lots"))).isTrue();
    assertThat(Hmp.isError(hmp.execute("loadvm nope"))).isTrue();
    assertThat(Hmp.isError(hmp.execute("info status"))).isFalse();
    assertThat(Hmp.isError(hmp.execute("help"))).isFalse();
    assertThat(Hmp.isError(hmp.execute("info migrate_parameters"))).isFalse();
  }

  @Test
  void completion() {
    java.util.function.Supplier<java.util.List<String>> tags = () -> java.util.List.of("snap0", "before-upgrade");
    assertThat(Hmp.complete(java.util.List.of(""), 0, tags)).contains("quit", "q", "info", "calc_dirty_rate", "migrate_set_parameter");
    assertThat(Hmp.complete(java.util.List.of("info", ""), 1, tags)).contains("version", "cpus", "registers", "dirty_rate", "migrate");
    assertThat(Hmp.complete(java.util.List.of("migrate_set_capability", ""), 1, tags)).contains("xbzrle", "return-path", "events");
    assertThat(Hmp.complete(java.util.List.of("migrate_set_capability", "xbzrle", ""), 2, tags)).containsExactly("on", "off");
    assertThat(Hmp.complete(java.util.List.of("migrate_set_parameter", ""), 1, tags))
        .contains("max-bandwidth", "downtime-limit", "xbzrle-cache-size", "cpu-throttle-tailslow");
    assertThat(Hmp.complete(java.util.List.of("migrate_set_parameter", "cpu-throttle-tailslow", ""), 2, tags)).containsExactly("on", "off");
    assertThat(Hmp.complete(java.util.List.of("migrate_set_parameter", "downtime-limit", ""), 2, tags)).isEmpty();
    assertThat(Hmp.complete(java.util.List.of("loadvm", ""), 1, tags)).containsExactly("snap0", "before-upgrade");
    assertThat(Hmp.complete(java.util.List.of("delvm", ""), 1, tags)).containsExactly("snap0", "before-upgrade");
  }
}
