package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code ferry run} and {@code ferry migrate} as separate processes, driven through QMP. */
class RunCommandTest {
  private static final Duration START = Duration.ofSeconds(60);
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  @TempDir Path dir;

  static Stream<Arguments> badOptions() {
    return Stream.of(
        Arguments.of(new String[] {"run", "--memory", "12Q"}, 2, "'12Q' is not a size"),
        Arguments.of(new String[] {"run", "--memory", "100T"}, 1, "cannot create the machine with --memory 100 TiB: out of memory"),
        Arguments.of(new String[] {"run", "--memory", "lots"}, 2, "is not a size"),
        Arguments.of(new String[] {"run", "--memory", "1000"  + "B"}, 2, "multiple of 4 KiB"),
        Arguments.of(new String[] {"run", "--dirty-rate", "fast"}, 2, "is not a rate"),
        Arguments.of(new String[] {"run", "--program", "doom"}, 2, "unknown program 'doom' (known: stress, random, fill, workingset, idle, disk)"),
        Arguments.of(new String[] {"run", "--drive", "file=a.raw"}, 2, "bad --drive 'file=a.raw': id= is missing"),
        Arguments.of(new String[] {"run", "--drive", "file=a.raw,id=d0,if=ide"}, 2, "unknown key 'if' (known: file, id, size, format)"),
        Arguments.of(new String[] {"run", "--drive", "file=missing.raw,id=d0"}, 2, "image missing.raw does not exist and no size= was given"),
        Arguments.of(new String[] {"run", "--drive", "file=a.raw,id=d0,size=1M,format=qcow2"}, 2, "format 'qcow2' is not supported"),
        Arguments.of(new String[] {"run", "--drive", "file=a.raw,id=d0,size=1M", "--drive", "file=b.raw,id=d0,size=1M"}, 2,
            "Duplicate ID 'd0' for drive"),
        Arguments.of(new String[] {"run", "--drive", "file=a.raw,id=d0,size=1000"}, 1, "drive 'd0': size 1000 is not a multiple of 512"),
        Arguments.of(new String[] {"run", "--vcpus", "0"}, 2, "--vcpus must be 1..64"),
        Arguments.of(new String[] {"run", "--machine", "pc"}, 2, "--machine: unknown machine type 'pc' (known: ferry-1.0, ferry-1.1)"),
        Arguments.of(new String[] {"demo", "--machine", "ferry-2"}, 2, "--machine: unknown machine type 'ferry-2' (known: ferry-1.0, ferry-1.1)"),
        Arguments.of(new String[] {"run", "--incoming", "carrier-pigeon:x"}, 2, "bad --incoming URI"),
        Arguments.of(new String[] {"run", "--qmp", "serial:x"}, 2, "bad --qmp URI"),
        Arguments.of(new String[] {"run", "--loadvm", "nope", "--snapshot-dir", "snaps"}, 1, "snapshot 'nope' not found in snaps"),
        Arguments.of(new String[] {"run", "--incoming", "file:missing.ferry"}, 1, "cannot read incoming file missing.ferry: no such file"),
        Arguments.of(new String[] {"run", "--incoming", "defer", "--loadvm", "x"}, 2, "--incoming and --loadvm exclude each other"),
        Arguments.of(new String[] {"migrate", "tcp:127.0.0.1:1"}, 2, "Missing required option: '--qmp=URI'"),
        Arguments.of(new String[] {"migrate", "--qmp", "unix:no-such.sock", "tcp:127.0.0.1:1"}, 1, "cannot reach the QMP monitor unix:no-such.sock"));
  }

  @ParameterizedTest
  @MethodSource("badOptions")
  void badOptionEndsWithOneLineAndItsExitCode(String[] args, int code, String message) throws Exception {
    FerryProcess p = FerryProcess.run(dir, START, args);
    assertThat(p.exitCode()).as(p.stderr()).isEqualTo(code);
    assertThat(p.messages()).as(p.stderr()).hasSize(1);
    assertThat(p.messages().getFirst()).startsWith("ferry " + args[0] + ": ").contains(message);
  }

  @Test
  void machineHelpListsTheTypesWithTheDefault() {
    Cli.Run r = Cli.ferry("run", "--machine", "help");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out().lines().toList()).containsExactly(
        "Supported machines are:",
        "ferry-1.0  Ferry 1.0 (cpu layout v1)",
        "ferry-1.1  Ferry 1.1 (cpu layout v2, RAM layout section) (default)");
  }

  @Test
  void corruptIncomingFileExitsOneAndNeverRuns() throws Exception {
    Path f = dir.resolve("junk.ferry");
    Files.write(f, "QEVM\0\0\0\3this is not a migration stream".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    FerryProcess p = FerryProcess.run(dir, START, "run", "--memory", "16M", "--incoming", "file:" + f);
    assertThat(p.exitCode()).as(p.stderr()).isEqualTo(1);
    assertThat(p.stderr()).contains("ferry run: incoming migration on file:" + f + " failed: ");
    assertThat(p.stderr()).doesNotContain(RunCommand.LOADED_PREFIX);
    // one line per error: no logger line (ERROR ... Exception) before it, the CLI logs at WARN
    assertThat(p.stderr().lines().toList()).as(p.stderr()).hasSize(2).allMatch(l -> l.startsWith("ferry"));
  }

  @Test
  void verboseLogsAtInfo() throws Exception {
    Path f = dir.resolve("junk.ferry");
    Files.write(f, "QEVM\0\0\0\3this is not a migration stream".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    FerryProcess p = FerryProcess.run(dir, START, "run", "--verbose", "--memory", "16M", "--incoming", "file:" + f);
    assertThat(p.exitCode()).as(p.stderr()).isEqualTo(1);
    assertThat(p.stderr()).contains(" INFO ");
  }

  @Test
  void aSecondRunRefusesTheSocketALiveProcessServes() throws Exception {
    Path sock = dir.resolve("one.qmp");
    try (FerryProcess first = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "idle", "--qmp", "unix:" + sock)) {
      first.awaitReady(START);
      FerryProcess second = FerryProcess.run(dir, START, "run", "--memory", "16M", "--qmp", "unix:" + sock);
      assertThat(second.exitCode()).as(second.stderr()).isEqualTo(1);
      assertThat(second.messages()).containsExactly("ferry run: --qmp unix:" + sock
          + ": a running process serves this socket (a connection was accepted); quit it or choose another path");
      try (QmpClient c = QmpClient.connect("unix:" + sock)) { // the first is still reachable
        assertThat(c.execute("query-status").path("status").asText()).isEqualTo("running");
        c.execute("quit");
      }
      assertThat(first.waitFor(START)).isZero();
    }
    // a stale socket (nobody accepts) is replaced
    try (java.nio.channels.ServerSocketChannel stale = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
      stale.bind(java.net.UnixDomainSocketAddress.of(sock));
    }
    assertThat(Files.exists(sock)).isTrue();
    try (FerryProcess third = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "idle", "--qmp", "unix:" + sock)) {
      third.awaitReady(START);
      try (QmpClient c = QmpClient.connect("unix:" + sock)) {
        c.execute("quit");
      }
      assertThat(third.waitFor(START)).isZero();
    }
  }

  @Test
  void migratesAStressGuestThroughFerryMigrate() throws Exception {
    Path srcSock = dir.resolve("src.qmp");
    Path dstSock = dir.resolve("dst.qmp");
    try (FerryProcess dst =
            FerryProcess.start(dir, "run", "--memory", "32M", "--incoming", "tcp:127.0.0.1:0", "--paused", "--qmp", "unix:" + dstSock, "--serial", "dst.serial");
        FerryProcess src =
            FerryProcess.start(dir, "run", "--memory", "32M", "--qmp", "unix:" + srcSock, "--serial", "src.serial")) {
      Map<String, String> dstReady = dst.awaitReady(START);
      Map<String, String> srcReady = src.awaitReady(START);
      assertThat(dstReady).containsEntry("state", "inmigrate").containsEntry("qmp", "unix:" + dstSock);
      assertThat(srcReady).containsEntry("state", "running").containsEntry("program", "stress").containsEntry("memory", "32 MiB");
      String incoming = dstReady.get("incoming");
      assertThat(incoming).matches("tcp:127\\.0\\.0\\.1:[1-9][0-9]*");

      try (QmpClient s = QmpClient.connect("unix:" + srcSock)) {
        ObjectNode caps = F.objectNode();
        caps.putArray("capabilities").addObject().put("capability", "events").put("state", true);
        s.execute("migrate-set-capabilities", caps);

        FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--downtime-limit", "300",
            "--json", "--report", "report.html", incoming);
        assertThat(mig.exitCode()).as(mig.stderr()).isZero();
        JsonNode report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(mig.stdout()); // one document
        assertThat(report.path("status").asText()).isEqualTo("completed");
        assertThat(report.path("ram-total-bytes").asLong()).isEqualTo(32L << 20);
        assertThat(report.path("transferred-bytes").asLong()).isPositive();
        assertThat(report.path("downtime-ms").isIntegralNumber()).isTrue();
        assertThat(report.path("downtime-limit-ms").asLong()).isEqualTo(300);
        assertThat(report.has("zero-pages") && report.has("normal-pages") && report.has("dirty-sync-count")
            && report.has("throughput-bytes-per-sec") && report.has("setup-time-ms") && report.has("total-time-ms")).isTrue();
        assertThat(report.path("samples").size()).isPositive();
        assertThat(report.path("markers").toString()).contains("\"label\":\"completed\"");
        // the option that changed a parameter says so, once; the last progress line is there off a terminal
        assertThat(mig.messages()).contains("ferry migrate: set on the source, and kept for later migrations as in QEMU"
            + " (--reset restores the defaults): downtime-limit=300 ms");
        assertThat(mig.stderr().strip().lines().toList().getLast()).startsWith("[").contains("100%", "completed");
        String html = Files.readString(dir.resolve("report.html"));
        assertThat(html).startsWith("<!DOCTYPE html>").contains("<svg id=\"transfer-rate\"", "<svg id=\"remaining\"", "<path class=\"line\"")
            .doesNotContain("<script", " src=", "<link"); // self-contained

        // events a QMP client saw on the source: MIGRATION setup .. completed, a pass, STOP
        assertThat(s.awaitEvent("MIGRATION", Duration.ofSeconds(5)).path("data").path("status").asText()).isEqualTo("setup");
        assertThat(s.awaitEvent("MIGRATION_PASS", Duration.ofSeconds(5)).path("data").path("pass").asLong()).isEqualTo(1);
        assertThat(s.awaitEvent("STOP", Duration.ofSeconds(5))).isNotNull();
        JsonNode last;
        do {
          last = s.awaitEvent("MIGRATION", Duration.ofSeconds(5));
          assertThat(last).isNotNull();
        } while (!last.path("data").path("status").asText().equals("completed"));
        assertThat(s.execute("query-status").path("status").asText()).isEqualTo("postmigrate");
        JsonNode info = s.execute("query-migrate");
        assertThat(info.path("status").asText()).isEqualTo("completed");
        assertThat(info.path("ram").path("total").asLong()).isEqualTo(32L << 20);
        assertThat(info.has("downtime")).isTrue();
        // exact: the stopped source's digest equals the loaded destination's, before its guest runs
        dst.awaitStderrLine(l -> l.equals(RunCommand.LOADED_PREFIX + "paused"), START);
        try (QmpClient d = QmpClient.connect("unix:" + dstSock)) {
          JsonNode sd = s.execute("ferry-memory-digest");
          JsonNode dd = d.execute("ferry-memory-digest");
          assertThat(dd.path("ram").asText()).isNotEmpty().isEqualTo(sd.path("ram").asText());
          assertThat(dd.path("devices").asText()).isEqualTo(sd.path("devices").asText());
          assertThat(dd.path("blocks")).isEqualTo(sd.path("blocks"));
          d.execute("cont");
        }
        s.execute("quit");
      }
      assertThat(src.waitFor(START)).isZero();

      try (QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("running");
        assertThat(d.execute("query-migrate").path("status").asText()).isEqualTo("completed");
        JsonNode check = d.execute("ferry-stress-check");
        assertThat(check.path("passed").asBoolean()).as(check.toString()).isTrue();
        assertThat(check.path("pages-checked").asLong()).isEqualTo((32L << 20) / 4096);
        assertThat(d.hmp("info stress")).startsWith("stress check: passed, 8192 pages checked, 0 bad");
        // the guest runs on: its serial shows B again
        long before = countB(dir.resolve("dst.serial"));
        long deadline = System.nanoTime() + START.toNanos();
        while (countB(dir.resolve("dst.serial")) <= before && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
        assertThat(countB(dir.resolve("dst.serial"))).isGreaterThan(before);
        d.execute("quit");
      }
      assertThat(dst.waitFor(START)).isZero();
    }
  }

  private static long countB(Path serial) throws java.io.IOException {
    if (!Files.exists(serial)) {
      return 0;
    }
    byte[] b = Files.readAllBytes(serial);
    long n = 0;
    for (byte x : b) {
      if (x == 'B') {
        n++;
      }
    }
    return n;
  }

  @Test
  void aWorkingSetGuestRunsWithItsOptionsAndPassesTheStressCheck() throws Exception {
    Path sock = dir.resolve("ws.qmp");
    try (FerryProcess m = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "workingset", "--working-set", "4M",
        "--working-set-base", "1M", "--qmp", "unix:" + sock, "--serial", "ws.serial")) {
      assertThat(m.awaitReady(START)).containsEntry("program", "workingset");
      Path serial = dir.resolve("ws.serial");
      long deadline = System.nanoTime() + START.toNanos();
      while (!(Files.exists(serial) && Files.readString(serial).contains("AB"))) {
        assertThat(System.nanoTime() - deadline).as("A then B on the serial").isNegative();
        Thread.sleep(20);
      }
      try (QmpClient c = QmpClient.connect("unix:" + sock)) {
        JsonNode r = c.execute("ferry-stress-check");
        assertThat(r.path("passed").asBoolean()).as(r.toString()).isTrue();
        assertThat(r.path("pages-checked").asLong()).isGreaterThanOrEqualTo(4096);
        c.execute("quit");
      }
    }
  }

  @Test
  void aWorkingSetBaseOffAPageIsAUsageError() throws Exception {
    FerryProcess p = FerryProcess.run(dir, START, "run", "--memory", "16M", "--program", "workingset", "--working-set-base", "100");
    assertThat(p.exitCode()).as(p.stderr()).isEqualTo(2);
    assertThat(p.stderr()).contains("working set base must be a non-negative multiple of 4096 bytes: 100");
  }

  @Test
  void snapshotsThroughQmpAndHmpAndLoadvmOnTheCommandLine() throws Exception {
    Path sock = dir.resolve("m.qmp");
    try (FerryProcess m = FerryProcess.start(dir, "run", "--memory", "16M", "--qmp", "unix:" + sock, "--snapshot-dir", "snaps")) {
      m.awaitReady(START);
      try (QmpClient c = QmpClient.connect("unix:" + sock)) {
        c.execute("stop");
        assertThat(c.awaitEvent("STOP", Duration.ofSeconds(5))).isNotNull();
        assertThat(c.execute("query-status").path("status").asText()).isEqualTo("paused");
        c.execute("cont");
        assertThat(c.awaitEvent("RESUME", Duration.ofSeconds(5))).isNotNull();

        c.execute("ferry-snapshot-save", F.objectNode().put("name", "first"));
        assertThat(c.hmp("savevm second")).isEmpty();
        JsonNode list = c.execute("ferry-query-snapshots");
        assertThat(list).hasSize(2);
        assertThat(list.get(0).path("name").asText()).isEqualTo("first");
        assertThat(list.get(0).path("id").asText()).isEqualTo("1");
        assertThat(list.get(1).path("vm-state-size").asLong()).isPositive();
        assertThat(c.hmp("info snapshots")).contains("first", "second");

        assertThat(c.hmp("loadvm first")).isEmpty();
        assertThat(c.execute("query-status").path("status").asText()).isEqualTo("running");
        assertThat(c.execute("ferry-stress-check").path("passed").asBoolean()).isTrue();
        c.execute("ferry-snapshot-load", F.objectNode().put("name", "2")); // by id
        assertThat(c.hmp("loadvm nope")).startsWith("Error: Snapshot 'nope' does not exist");
        assertThatThrownBy(() -> c.execute("ferry-snapshot-load", F.objectNode().put("name", "nope")))
            .isInstanceOf(QmpError.class)
            .hasMessageContaining("does not exist");

        c.execute("ferry-snapshot-delete", F.objectNode().put("name", "first"));
        assertThat(c.hmp("delvm second")).isEmpty();
        assertThat(c.execute("ferry-query-snapshots")).isEmpty();
        c.hmp("savevm keep");
        c.execute("quit");
      }
      assertThat(m.waitFor(START)).isZero();
    }
    Path sock2 = dir.resolve("m2.qmp");
    try (FerryProcess m = FerryProcess.start(dir, "run", "--memory", "16M", "--qmp", "unix:" + sock2, "--snapshot-dir", "snaps", "--loadvm", "keep", "--paused")) {
      assertThat(m.awaitReady(START)).containsEntry("state", "paused");
      try (QmpClient c = QmpClient.connect("unix:" + sock2)) {
        assertThat(c.execute("ferry-stress-check").path("passed").asBoolean()).isTrue();
        assertThat(c.execute("query-status").path("status").asText()).isEqualTo("paused");
        c.execute("cont");
        assertThat(c.execute("query-status").path("status").asText()).isEqualTo("running");
        assertThatThrownBy(() -> c.execute("migrate-start-postcopy"))
            .hasMessageContaining("Enable postcopy with migrate_set_capability before the start of migration");
        assertThatThrownBy(() -> c.execute("migrate-incoming", F.objectNode().put("uri", "tcp:127.0.0.1:0")))
            .hasMessageContaining("'-incoming' was not specified");
        ObjectNode caps = F.objectNode();
        caps.putArray("capabilities").addObject().put("capability", "postcopy-preempt").put("state", true);
        assertThatThrownBy(() -> c.execute("migrate-set-capabilities", caps))
            .hasMessageContaining("Capability 'postcopy-preempt' is not supported by Ferry");
        assertThatThrownBy(() -> c.execute("migrate-set-parameters", F.objectNode().put("compress-level", 4)))
            .hasMessageContaining("'compress-level' is unexpected or not supported");
        c.execute("migrate-set-parameters", F.objectNode().put("multifd-channels", 4));
        assertThat(c.execute("query-migrate-parameters").path("multifd-channels").asLong()).isEqualTo(4);
        c.execute("migrate-set-parameters", F.objectNode().put("downtime-limit", 123));
        assertThat(c.execute("query-migrate-parameters").path("downtime-limit").asLong()).isEqualTo(123);
      }
      m.terminate(); // SIGTERM: a clean shutdown
      m.waitFor(START);
    }
  }

  @Test
  void deferredIncomingWaitsForMigrateIncoming() throws Exception {
    Path dstSock = dir.resolve("d.qmp");
    Path srcSock = dir.resolve("s.qmp");
    Path mig = dir.resolve("mig.sock");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "idle", "--incoming", "defer", "--qmp", "unix:" + dstSock);
        FerryProcess src = FerryProcess.start(dir, "run", "--memory", "16M", "--program", "idle", "--qmp", "unix:" + srcSock, "--paused")) {
      assertThat(dst.awaitReady(START)).containsEntry("incoming", "defer").containsEntry("state", "inmigrate");
      src.awaitReady(START);
      try (QmpClient d = QmpClient.connect("unix:" + dstSock);
          QmpClient s = QmpClient.connect("unix:" + srcSock)) {
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("inmigrate");
        d.execute("migrate-incoming", F.objectNode().put("uri", "unix:" + mig));
        assertThat(dst.awaitStderrLine(l -> l.startsWith(RunCommand.LISTENING_PREFIX), START)).endsWith("unix:" + mig);
        assertThatThrownBy(() -> d.execute("migrate-incoming", F.objectNode().put("uri", "unix:" + mig)))
            .hasMessageContaining("already been started");
        s.execute("migrate", F.objectNode().put("uri", "unix:" + mig));
        dst.awaitStderrLine(l -> l.startsWith(RunCommand.LOADED_PREFIX), START);
        // the source was paused, so the destination stays paused
        assertThat(d.execute("query-status").path("status").asText()).isEqualTo("paused");
        assertThat(d.execute("query-migrate").path("status").asText()).isEqualTo("completed");
        // exactly the stopped source's RAM and device state
        assertThat(s.execute("query-status").path("status").asText()).isEqualTo("postmigrate");
        MemoryDigest sd = MemoryDigestInfo.fromJson(s.execute("ferry-memory-digest"));
        MemoryDigest dd = MemoryDigestInfo.fromJson(d.execute("ferry-memory-digest"));
        assertThat(sd.firstDifference(dd)).isEmpty();
        assertThat(d.hmp("info digest")).startsWith("digest (crc32c-4k): ram " + sd.ram() + ", devices " + sd.devices());
        d.execute("quit");
        s.execute("quit");
      }
      assertThat(dst.waitFor(START)).isZero();
      assertThat(src.waitFor(START)).isZero();
    }
  }
}
