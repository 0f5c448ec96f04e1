package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.machine.GuestContext;
import dev.ferry.machine.GuestProgram;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.RunState;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpError;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** QMP {@code stop} against a guest step that does not return: one-line error, the machine runs on. */
@Timeout(60)
class StopTimeoutTest {
  @TempDir Path dir;

  @Test
  void stopThatTimesOutIsAOneLineErrorAndTheMachineRunsOn() throws Exception {
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    GuestProgram stuck =
        new GuestProgram() {
          @Override
          public String name() {
            return "stuck";
          }

          @Override
          public void step(GuestContext ctx) {
            entered.countDown();
            try {
              release.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
        };
    try (MachineHost h = new MachineHost(
        Machine.builder().memory(1 << 20).program(stuck).stopTimeout(Duration.ofMillis(200)).build())) {
      EngineBackend backend = new EngineBackend(h, new SnapshotStore(dir, h));
      h.machine().resume();
      entered.await();
      assertThatThrownBy(backend::stop)
          .isInstanceOf(QmpError.class)
          .hasMessage("GenericError: vCPU 0 did not stop within 200 ms (a guest step that does not return)");
      assertThat(backend.queryStatus().status()).isEqualTo(RunState.RUNNING);
      release.countDown();
      backend.stop();
      assertThat(backend.queryStatus().status()).isEqualTo(RunState.PAUSED);
    }
  }
}
