package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class QmpServerTest {
  @TempDir Path tmp;
  FakeMonitorBackend backend = new FakeMonitorBackend();
  QmpServer server;

  @AfterEach
  void tearDown() throws IOException {
    if (server != null) {
      server.close();
    }
  }

  private String start(String kind) throws IOException {
    String uri = kind.equals("unix") ? "unix:" + tmp.resolve("m.qmp") : "tcp:127.0.0.1:0";
    server = QmpServer.start(uri, backend);
    return server.uri();
  }

  private RawQmpClient negotiated() throws IOException {
    RawQmpClient c = new RawQmpClient(start("unix"));
    c.greetingAndNegotiate();
    return c;
  }

  private static void assertError(JsonNode r, String cls, String desc) {
    assertThat(r.path("error").path("class").asText()).as(r.toString()).isEqualTo(cls);
    assertThat(r.path("error").path("desc").asText()).as(r.toString()).isEqualTo(desc);
  }

  @ParameterizedTest
  @ValueSource(strings = {"unix", "tcp"})
  void greetingIsQemusShapeAndNegotiationGatesCommands(String kind) throws IOException {
    try (RawQmpClient c = new RawQmpClient(start(kind))) {
      assertThat(c.in.readLine())
          .isEqualTo(
              "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7},"
                  + " \"package\": \"ferry-0.1.0\"}, \"capabilities\": []}}");
      JsonNode r = c.cmd("{\"execute\": \"query-status\", \"id\": 7}");
      assertError(r, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
      assertThat(r.get("id").asInt()).isEqualTo(7);
      assertError(
          c.cmd("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}"),
          "GenericError",
          "Capability oob not available");
      assertError(
          c.cmd("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"x\"]}}"),
          "GenericError",
          "Parameter 'enable[0]' does not accept value 'x'");
      assertThat(c.cmd("{\"execute\": \"qmp_capabilities\", \"id\": \"a\"}").toString())
          .isEqualTo("{\"return\":{},\"id\":\"a\"}");
      assertError(
          c.cmd("{\"execute\": \"qmp_capabilities\"}"),
          "CommandNotFound",
          "Capabilities negotiation is already complete, command ignored");
      assertThat(c.cmd("{\"execute\": \"query-status\", \"id\": {\"x\": [1]}}").toString())
          .isEqualTo(
              "{\"return\":{\"running\":true,\"singlestep\":false,\"status\":\"running\"},\"id\":{\"x\":[1]}}");
    }
  }

  @Test
  void requestShapeErrorsUseQemusWords() throws IOException {
    try (RawQmpClient c = negotiated()) {
      assertError(c.cmd("[1, 2]"), "GenericError", "QMP input must be a JSON object");
      assertError(c.cmd("{\"id\": 1}"), "GenericError", "QMP input lacks member 'execute'");
      assertError(c.cmd("{\"execute\": 1}"), "GenericError", "QMP input member 'execute' must be a string");
      assertError(
          c.cmd("{\"execute\": \"stop\", \"arguments\": []}"),
          "GenericError",
          "QMP input member 'arguments' must be an object");
      assertError(
          c.cmd("{\"exec-oob\": \"query-status\", \"id\": 3}"),
          "GenericError",
          "QMP input member 'exec-oob' is unexpected");
      assertError(c.cmd("{\"execute\": \"nope\"}"), "CommandNotFound", "The command nope has not been found");
      assertThat(c.cmd("{\"execute\": \"query-version\"}").path("return").path("package").asText())
          .isEqualTo("ferry-0.1.0");
    }
  }

  @Test
  void argumentsAreCheckedAgainstTheSchema() throws IOException {
    try (RawQmpClient c = negotiated()) {
      assertError(c.cmd("{\"execute\": \"migrate\", \"arguments\": {}}"), "GenericError", "Parameter 'uri' is missing");
      assertError(
          c.cmd("{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:h:1\", \"detach\": \"yes\"}}"),
          "GenericError",
          "Invalid parameter type for 'detach', expected: boolean");
      assertError(
          c.cmd("{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:h:1\", \"bogus\": 1}}"),
          "GenericError",
          "Parameter 'bogus' is unexpected");
      assertError(
          c.cmd("{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"warp\", \"state\": true}]}}"),
          "GenericError",
          "Parameter 'capabilities[0].capability' does not accept value 'warp'");
      assertError(
          c.cmd("{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"events\"}]}}"),
          "GenericError",
          "Parameter 'capabilities[0].state' is missing");
      assertError(
          c.cmd("{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"compress-level\": 300}}"),
          "GenericError",
          "Parameter 'compress-level' expects uint8_t");
      assertError(
          c.cmd("{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"downtime-limit\": \"5\"}}"),
          "GenericError",
          "Invalid parameter type for 'downtime-limit', expected: integer");
      assertThat(backend.calls).isEmpty();
    }
  }

  @Test
  void everyCommandDelegatesToTheBackend() throws Exception {
    try (RawQmpClient c = negotiated()) {
      assertThat(c.cmd("{\"execute\": \"stop\"}").toString()).isEqualTo("{\"return\":{}}");
      assertThat(c.cmd("{\"execute\": \"query-status\"}").path("return").path("status").asText()).isEqualTo("paused");
      assertThat(c.cmd("{\"execute\": \"cont\"}").has("return")).isTrue();
      assertThat(c.cmd("{\"execute\": \"query-migrate\"}").toString()).isEqualTo("{\"return\":{}}");
      assertThat(c.cmd("{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:127.0.0.1:4444\"}}").has("return")).isTrue();
      JsonNode m = c.cmd("{\"execute\": \"query-migrate\"}").get("return");
      assertThat(m.path("status").asText()).isEqualTo("completed");
      assertThat(m.path("ram").path("page-size").asLong()).isEqualTo(4096);
      assertThat(m.path("total-time").asLong()).isEqualTo(1234);
      assertThat(m.path("downtime").asLong()).isEqualTo(42);
      assertError(c.cmd("{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"rdma:x\"}}"), "GenericError", "unknown migration protocol: rdma:x");
      assertThat(c.cmd("{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"tcp:0:4444\"}}").has("return")).isTrue();
      assertThat(c.cmd("{\"execute\": \"migrate_cancel\"}").has("return")).isTrue();
      assertError(c.cmd("{\"execute\": \"migrate-start-postcopy\"}"), "GenericError",
          "Enable postcopy with migrate_set_capability before the start of migration");
      assertThat(c.cmd("{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"xbzrle\", \"state\": true}]}}").has("return")).isTrue();
      JsonNode caps = c.cmd("{\"execute\": \"query-migrate-capabilities\"}").get("return");
      assertThat(caps.get(0).toString()).isEqualTo("{\"capability\":\"xbzrle\",\"state\":true}");
      assertThat(caps.size()).isEqualTo(23); // QEMU 7.2's 21, QEMU 9.0's mapped-ram and Ferry's ferry-auto-postcopy
      assertError(c.cmd("{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"rdma-pin-all\", \"state\": true}]}}"),
          "GenericError", "Ferry has no RDMA");
      assertThat(c.cmd("{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"max-bandwidth\": 1000, \"downtime-limit\": 50}}").has("return")).isTrue();
      JsonNode p = c.cmd("{\"execute\": \"query-migrate-parameters\"}").get("return");
      assertThat(p.path("max-bandwidth").asLong()).isEqualTo(1000);
      assertThat(p.path("downtime-limit").asLong()).isEqualTo(50);
      assertError(c.cmd("{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"compress-level\": 3}}"),
          "GenericError", "Parameter 'compress-level' is not supported by Ferry");
      assertThat(c.cmd("{\"execute\": \"ferry-snapshot-save\", \"arguments\": {\"name\": \"s1\"}}").has("return")).isTrue();
      assertThat(c.cmd("{\"execute\": \"ferry-query-snapshots\"}").get("return").get(0).path("name").asText()).isEqualTo("s1");
      assertThat(c.cmd("{\"execute\": \"ferry-snapshot-load\", \"arguments\": {\"name\": \"s1\"}}").has("return")).isTrue();
      assertThat(c.cmd("{\"execute\": \"ferry-snapshot-delete\", \"arguments\": {\"name\": \"s1\"}}").has("return")).isTrue();
      assertError(c.cmd("{\"execute\": \"ferry-snapshot-load\", \"arguments\": {\"name\": \"s1\"}}"), "GenericError", "Snapshot 's1' does not exist");
      JsonNode names = c.cmd("{\"execute\": \"query-commands\"}").get("return");
      List<String> list = new ArrayList<>();
      names.forEach(n -> list.add(n.path("name").asText()));
      assertThat(list).contains("qmp_capabilities", "query-status", "migrate", "migrate_cancel", "human-monitor-command", "quit");
      assertThat(c.cmd("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info status\"}}").path("return").asText())
          .isEqualTo("VM status: running\r\n");
      assertThat(c.cmd("{\"execute\": \"quit\", \"id\": 9}").toString()).isEqualTo("{\"return\":{},\"id\":9}");
    }
    assertThat(backend.calls).contains("stop", "cont", "migrate tcp:127.0.0.1:4444 detach=false resume=false",
        "migrate-incoming tcp:0:4444", "migrate_cancel", "loadvm s1");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (backend.quits.get() == 0 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(backend.quits.get()).isEqualTo(1);
  }

  @Test
  void malformedJsonIsAnErrorAndTheConnectionStaysUsable() throws IOException {
    try (RawQmpClient c = negotiated()) {
      JsonNode r = c.cmd("{\"execute\": query-status}");
      assertThat(r.path("error").path("class").asText()).isEqualTo("GenericError");
      assertThat(r.path("error").path("desc").asText()).startsWith("JSON parse error, ");
      assertThat(r.has("id")).isFalse();
      assertError(c.cmd("}"), "GenericError", "JSON parse error, expecting value");
      assertThat(c.cmd("{\"execute\": \"query-status\", \"id\": 1}").path("return").path("running").asBoolean()).isTrue();
      // duplicate keys are refused, as QEMU's parser refuses them
      assertThat(c.cmd("{\"execute\": \"stop\", \"execute\": \"cont\"}").path("error").path("desc").asText())
          .startsWith("JSON parse error");
    }
  }

  @Test
  void severalMessagesInOneWriteAndOneMessageOverManyWrites() throws IOException {
    try (RawQmpClient c = negotiated()) {
      c.sendRaw("{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"query-version\",\"id\":2}  {\"execute\":\"stop\",\"id\":3}");
      assertThat(c.reply().path("id").asInt()).isEqualTo(1);
      assertThat(c.reply().path("id").asInt()).isEqualTo(2);
      assertThat(c.reply().path("id").asInt()).isEqualTo(3);
      String msg = "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info status \\\"}{\\\"\"}, \"id\": 4}";
      for (char ch : msg.toCharArray()) {
        c.sendRaw(String.valueOf(ch));
      }
      JsonNode r = c.reply();
      assertThat(r.path("id").asInt()).isEqualTo(4);
      assertThat(r.path("return").asText()).isEqualTo("VM status: paused\r\n");
    }
  }

  @Test
  void twoClientsAtOnceAndEventsGoToBoth() throws Exception {
    String uri = start("tcp");
    try (RawQmpClient a = new RawQmpClient(uri); RawQmpClient b = new RawQmpClient(uri)) {
      a.greetingAndNegotiate();
      b.greetingAndNegotiate();
      assertThat(a.cmd("{\"execute\": \"stop\", \"id\": \"a\"}").path("id").asText()).isEqualTo("a");
      // b sees the STOP event caused by a, then its own reply
      JsonNode ev = b.next();
      assertThat(ev.path("event").asText()).isEqualTo("STOP");
      assertThat(ev.path("timestamp").has("seconds")).isTrue();
      assertThat(ev.path("timestamp").has("microseconds")).isTrue();
      assertThat(ev.has("data")).isFalse();
      assertThat(b.cmd("{\"execute\": \"cont\", \"id\": \"b\"}").path("id").asText()).isEqualTo("b");
      assertThat(server.clientCount()).isEqualTo(2);
    }
  }

  @Test
  void migrationEventsFollowTheEventsCapability() throws IOException {
    try (RawQmpClient c = negotiated()) {
      c.cmd("{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}}");
      c.sendRaw("{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:/x\"}, \"id\": 5}\n");
      List<String> seen = new ArrayList<>();
      while (true) {
        JsonNode n = c.next();
        if (n.has("id")) {
          break;
        }
        seen.add(n.path("event").asText() + " " + n.path("data"));
      }
      assertThat(seen).containsExactly(
          "MIGRATION {\"status\":\"setup\"}", "MIGRATION_PASS {\"pass\":1}", "MIGRATION {\"status\":\"completed\"}");
    }
  }

  @Test
  void eventsHammeredFromAnotherThreadNeverLandInsideAReply() throws Exception {
    try (RawQmpClient c = negotiated()) {
      AtomicBoolean stop = new AtomicBoolean();
      Thread hammer =
          Thread.ofPlatform()
              .start(
                  () -> {
                    long pass = 0;
                    // bursts with short pauses: fast enough to interleave with every reply,
                    // slow enough not to trip the server's unread-queue limit
                    while (!stop.get()) {
                      for (int k = 0; k < 20; k++) {
                        backend.emit(new MonitorEvent.MigrationPass(++pass));
                      }
                      try {
                        Thread.sleep(1);
                      } catch (InterruptedException e) {
                        return;
                      }
                    }
                  });
      int replies = 0;
      int events = 0;
      try {
        for (int i = 0; i < 300; i++) {
          c.sendRaw("{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info migrate_capabilities\"}, \"id\": " + i + "}\n");
          while (true) {
            JsonNode n = c.next(); // every line parses as one whole object
            if (n.has("event")) {
              assertThat(n.path("event").asText()).isEqualTo("MIGRATION_PASS");
              events++;
              continue;
            }
            assertThat(n.path("id").asInt()).isEqualTo(i);
            assertThat(n.path("return").asText()).startsWith("xbzrle: off\r\n").endsWith("postcopy-preempt: off\r\nmapped-ram: off\r\nferry-auto-postcopy: off\r\n");
            replies++;
            break;
          }
        }
      } finally {
        stop.set(true);
        hammer.join();
      }
      assertThat(replies).isEqualTo(300);
      assertThat(events).isPositive();
    }
  }

  @Test
  void aClientThatDisconnectsMidCommandDoesNotHurtTheOthers() throws Exception {
    String uri = start("unix");
    CountDownLatch gate = new CountDownLatch(1);
    backend.incomingGate = gate;
    try (RawQmpClient other = new RawQmpClient(uri)) {
      other.greetingAndNegotiate();
      RawQmpClient leaver = new RawQmpClient(uri);
      leaver.greetingAndNegotiate();
      leaver.sendRaw("{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"tcp:0:1\"}, \"id\": 1}\n");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (!backend.calls.contains("migrate-incoming tcp:0:1") && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      leaver.close();
      assertThat(other.cmd("{\"execute\": \"query-status\", \"id\": 2}").path("id").asInt()).isEqualTo(2);
      gate.countDown(); // the command finishes; its reply has nowhere to go
      assertThat(other.cmd("{\"execute\": \"stop\", \"id\": 3}").path("id").asInt()).isEqualTo(3);
      try (RawQmpClient late = new RawQmpClient(uri)) {
        late.greetingAndNegotiate();
        assertThat(late.cmd("{\"execute\": \"cont\", \"id\": 4}").path("id").asInt()).isEqualTo(4);
      }
    }
  }

  @Test
  void qmpClientRunsCommandsAndCollectsEvents() throws Exception {
    String uri = start("unix");
    try (QmpClient c = QmpClient.connect(uri)) {
      assertThat(c.serverVersion().major()).isEqualTo(7);
      assertThat(c.execute("query-status").path("status").asText()).isEqualTo("running");
      c.execute("stop");
      assertThat(c.awaitEvent("STOP", java.time.Duration.ofSeconds(10))).isNotNull();
      assertThat(c.hmp("info status")).isEqualTo("VM status: paused\r\n");
      QmpError e = org.junit.jupiter.api.Assertions.assertThrows(QmpError.class, () -> c.execute("nope"));
      assertThat(e.errorClass()).isEqualTo(QmpErrorClass.COMMAND_NOT_FOUND);
      assertThat(e.desc()).isEqualTo("The command nope has not been found");
    }
  }
}
