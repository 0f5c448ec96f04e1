package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.RunState;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpError;
import dev.ferry.testing.ExactState;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8 item 5, fourth bullet: a failed loadvm or incoming load leaves the machine in
 * {@code internal-error}, which {@code cont} refuses with QEMU's words, until a whole state loads.
 */
@Timeout(120)
class LoadFailureRunStateTest {
  @TempDir Path dir;

  static MachineHost host() {
    return new MachineHost(Machine.builder().memory(4 << 20).program("stress")
        .programOptions(ProgramOptions.defaults().withPagesPerStep(64)).build());
  }

  /** Saves a running stress machine as {@code good} and a truncated copy as {@code bad}. */
  private SnapshotStore snapshots(MachineHost src) throws Exception {
    SnapshotStore store = new SnapshotStore(dir, src);
    src.machine().resume();
    while (src.machine().cpu(0).reg(2) < 1) {
      Thread.sleep(1);
    }
    store.save("good");
    store.save("bad");
    Path bad = dir.resolve("bad" + ".ferry");
    try (FileChannel ch = FileChannel.open(bad, StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() / 2); // cut inside the RAM section
    }
    return store;
  }

  @Test
  void aFailedLoadvmLeavesInternalErrorWhichContRefusesUntilAWholeSnapshotLoads() throws Exception {
    try (MachineHost h = host()) {
      SnapshotStore store = snapshots(h);
      EngineBackend backend = new EngineBackend(h, store);
      assertThatThrownBy(() -> backend.snapshotLoad("bad"))
          .isInstanceOf(QmpError.class)
          .hasMessageStartingWith("GenericError: Error loading snapshot 'bad': ");
      assertThat(backend.queryStatus().status()).isEqualTo(RunState.INTERNAL_ERROR);
      assertThatThrownBy(backend::cont).isInstanceOf(QmpError.class).hasMessage("GenericError: Resetting the Virtual Machine is required");
      assertThat(h.machine().isRunning()).isFalse();
      assertThatThrownBy(() -> h.machine().resume()).hasMessageContaining("Resetting the Virtual Machine is required");

      // a whole snapshot is the reset: it loads, and the machine stays stopped (it was not running)
      backend.snapshotLoad("good");
      assertThat(h.machine().runState()).isEqualTo(RunState.PAUSED);
      try (MachineHost ref = host()) {
        ref.load(dir.resolve("good" + ".ferry"));
        ExactState.assertSame(h, ref);
      }
      backend.cont();
      assertThat(h.machine().isRunning()).isTrue();
    }
  }

  @Test
  void aFailedIncomingLoadLeavesInternalErrorWhichContRefuses() throws Exception {
    Path stream;
    try (MachineHost src = host()) {
      snapshots(src);
      stream = dir.resolve("bad" + ".ferry");
    }
    try (MachineHost dst = host()) {
      EngineBackend backend = new EngineBackend(dst, new SnapshotStore(dir.resolve("none"), dst));
      CompletableFuture<Exception> failed = new CompletableFuture<>();
      backend.setIncomingObserver(new EngineBackend.IncomingObserver() {
        @Override
        public void failed(String uri, Exception error) {
          failed.complete(error);
        }

        @Override
        public void loaded(RunState sourceRunState) {
          failed.complete(null);
        }
      });
      backend.startIncoming("file:" + stream);
      assertThat(failed.get(60, TimeUnit.SECONDS)).isNotNull();
      assertThat(backend.queryStatus().status()).isEqualTo(RunState.INTERNAL_ERROR);
      assertThatThrownBy(backend::cont).isInstanceOf(QmpError.class).hasMessage("GenericError: Resetting the Virtual Machine is required");
      assertThat(dst.machine().isRunning()).isFalse();
    }
  }

  @Test
  void contDuringTheSwitchOverSaysQemusWords() throws Exception {
    try (MachineHost h = host()) {
      EngineBackend backend = new EngineBackend(h, new SnapshotStore(dir, h));
      h.machine().stop(RunState.FINISH_MIGRATE);
      assertThatThrownBy(backend::cont).isInstanceOf(QmpError.class).hasMessage("GenericError: Migration is not finalized yet");
    }
  }
}
