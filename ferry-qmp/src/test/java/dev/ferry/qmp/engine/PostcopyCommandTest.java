package dev.ferry.qmp.engine;

import static dev.ferry.qmp.engine.QmpMigrationSupport.awaitTrue;
import static dev.ferry.qmp.engine.QmpMigrationSupport.caps;
import static dev.ferry.qmp.engine.QmpMigrationSupport.status;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.RunState;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Postcopy driven over QMP as a management tool would: capabilities on both sides, the switch, the outcome. */
@Timeout(120)
class PostcopyCommandTest {
  static final JsonNodeFactory F = JsonNodeFactory.instance;
  private static final long WAIT_SECONDS = 60;
  @TempDir Path dir;

  private MachineHost host() {
    return new MachineHost(Machine.builder().memory(16 << 20).program("stress").serial(new ByteArrayOutputStream()).build());
  }

  @Test
  void postcopyOverQmpCompletesAndTheSourceRefusesToRunAgain() throws Exception {
    try (MachineHost src = host();
        MachineHost dst = host()) {
      QmpDispatcher s = new QmpDispatcher(new EngineBackend(src, new SnapshotStore(dir.resolve("s"), src)));
      EngineBackend dstBackend = new EngineBackend(dst, new SnapshotStore(dir.resolve("d"), dst));
      QmpDispatcher d = new QmpDispatcher(dstBackend);
      CountDownLatch loaded = new CountDownLatch(1);
      dstBackend.setIncomingObserver(
          new EngineBackend.IncomingObserver() {
            @Override
            public void loaded(RunState sourceRunState) {
              loaded.countDown();
            }
          });
      src.machine().resume();

      assertThatThrownBy(() -> s.execute("migrate-start-postcopy", null))
          .isInstanceOf(QmpError.class)
          .hasMessageContaining("Enable postcopy with migrate_set_capability before the start of migration");
      s.execute("migrate-set-capabilities", caps("postcopy-ram"));
      assertThatThrownBy(() -> s.execute("migrate-start-postcopy", null))
          .hasMessageContaining("Postcopy must be started after migration has been started");
      s.execute("migrate-set-parameters", F.objectNode().put("max-bandwidth", 4 << 20).put("downtime-limit", 1));

      d.execute("migrate-set-capabilities", caps("postcopy-ram", "postcopy-blocktime"));
      dstBackend.deferIncoming();
      String uri = "unix:" + dir.resolve("pc.sock");
      d.execute("migrate-incoming", F.objectNode().put("uri", uri));
      awaitTrue(WAIT_SECONDS, () -> dir.resolve("pc.sock").toFile().exists());

      s.execute("migrate", F.objectNode().put("uri", uri));
      s.execute("migrate-start-postcopy", null);
      awaitTrue(WAIT_SECONDS, () -> status(s).equals("completed") || status(s).equals("failed") || status(s).equals("postcopy-paused"));
      assertThat(status(s)).isEqualTo("completed");
      assertThat(loaded.await(60, TimeUnit.SECONDS)).isTrue();

      JsonNode out = s.execute("query-migrate", null);
      assertThat(out.path("ram").path("postcopy-bytes").asLong()).isGreaterThan(0);
      assertThat(out.path("ram").has("postcopy-requests")).isTrue();
      JsonNode in = d.execute("query-migrate", null);
      assertThat(in.path("status").asText()).isEqualTo("completed");
      assertThat(in.has("postcopy-blocktime")).isTrue();
      assertThat(in.path("postcopy-vcpu-blocktime")).hasSize(1);
      assertThat(dst.machine().isRunning()).isTrue();

      assertThatThrownBy(() -> s.execute("cont", null))
          .hasMessageContaining("the guest now lives on the destination");
      assertThat(src.machine().isRunning()).isFalse();
      assertThatThrownBy(() -> s.execute("migrate", F.objectNode().put("uri", uri).put("resume", true)))
          .hasMessageContaining("Cannot resume if there is no paused migration");

      dst.machine().pause();
      assertThat(d.execute("ferry-stress-check", null).path("passed").asBoolean()).isTrue();
    }
  }

  @Test
  void pauseAndRecoveryOverQmpAndHmpWithQemusEventsAndTexts() throws Exception {
    try (MachineHost src = host();
        MachineHost dst = host()) {
      QmpDispatcher s = new QmpDispatcher(new EngineBackend(src, new SnapshotStore(dir.resolve("s"), src)));
      EngineBackend dstBackend = new EngineBackend(dst, new SnapshotStore(dir.resolve("d"), dst));
      QmpDispatcher d = new QmpDispatcher(dstBackend);
      java.util.List<String> dstEvents = new java.util.concurrent.CopyOnWriteArrayList<>();
      dstBackend.attach(e -> {
        if (e instanceof dev.ferry.qmp.MonitorEvent.Migration m) {
          dstEvents.add(m.status().qapiName());
        }
      });
      CountDownLatch loaded = new CountDownLatch(1);
      java.util.List<String> paused = new java.util.concurrent.CopyOnWriteArrayList<>();
      dstBackend.setIncomingObserver(
          new EngineBackend.IncomingObserver() {
            @Override
            public void loaded(RunState sourceRunState) {
              loaded.countDown();
            }

            @Override
            public void postcopyPaused(String uri, Exception error) {
              paused.add(error.getMessage());
            }
          });
      dev.ferry.qmp.hmp.Hmp hmpSrc = new dev.ferry.qmp.hmp.Hmp(s);
      dev.ferry.qmp.hmp.Hmp hmpDst = new dev.ferry.qmp.hmp.Hmp(d);
      src.machine().resume();
      assertThatThrownBy(() -> s.execute("migrate-pause", null))
          .hasMessageContaining("migrate-pause is currently only supported during postcopy-active state");
      assertThatThrownBy(() -> d.execute("migrate-recover", F.objectNode().put("uri", "unix:" + dir.resolve("r0.sock"))))
          .hasMessageContaining("Migrate recover can only be run when postcopy is paused.");
      s.execute("migrate-set-capabilities", caps("postcopy-ram", "events"));
      s.execute("migrate-set-parameters",
          F.objectNode().put("max-bandwidth", 4 << 20).put("downtime-limit", 1).put("max-postcopy-bandwidth", 256 << 10));
      d.execute("migrate-set-capabilities", caps("postcopy-ram", "events"));
      dstBackend.setAutostart(false); // held vCPUs: the digests must match exactly
      dstBackend.deferIncoming();
      String uri = "unix:" + dir.resolve("pc.sock");
      d.execute("migrate-incoming", F.objectNode().put("uri", uri));
      awaitTrue(WAIT_SECONDS, () -> dir.resolve("pc.sock").toFile().exists());
      s.execute("migrate", F.objectNode().put("uri", uri));
      s.execute("migrate-start-postcopy", null);
      awaitTrue(WAIT_SECONDS, () -> dst.migration().incoming() != null && dst.migration().incoming().postcopy() != null
          && dst.migration().incoming().postcopy().state() == dev.ferry.migration.PostcopyIncoming.State.RUNNING);
      // the destination pauses (HMP migrate_pause), the source follows when the connection goes
      assertThat(hmpDst.execute("migrate_pause")).isEmpty();
      awaitTrue(WAIT_SECONDS, () -> status(s).equals("postcopy-paused") && status(d).equals("postcopy-paused"));
      assertThat(d.execute("query-migrate", null).path("error-desc").asText()).contains("migrate-recover");
      assertThat(paused).hasSize(1);
      assertThatThrownBy(() -> d.execute("stop", null)).hasMessageContaining("paused");
      assertThatThrownBy(() -> s.execute("cont", null)).hasMessageContaining("the guest now lives on the destination");
      String rec = "unix:" + dir.resolve("rec.sock");
      assertThat(hmpDst.execute("migrate_recover " + rec)).isEmpty();
      assertThat(status(d)).isEqualTo("postcopy-paused"); // MIGRATION {setup} while it stays paused
      assertThat(dstEvents).endsWith("postcopy-paused", "setup");
      s.execute("migrate-set-parameters", F.objectNode().put("max-postcopy-bandwidth", 0));
      assertThat(hmpSrc.execute("migrate -d -r " + rec)).isEmpty();
      awaitTrue(WAIT_SECONDS, () -> status(s).equals("completed") || status(s).equals("failed"));
      assertThat(status(s)).isEqualTo("completed");
      assertThat(loaded.await(60, TimeUnit.SECONDS)).isTrue();
      assertThat(dstEvents).containsSubsequence(
          "postcopy-active", "postcopy-paused", "setup", "postcopy-recover", "postcopy-active", "completed");
      assertThat(src.memoryDigest().firstDifference(dst.memoryDigest())).isEmpty();
    }
  }
}
