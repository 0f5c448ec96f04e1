package dev.ferry.machine;

import static dev.ferry.machine.FreshRamMigrationTest.assertSameState;
import static dev.ferry.machine.FreshRamMigrationTest.awaitTrue;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.savevm.StateSaver;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.testing.Incoming;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A snapshot save and a migration of the same machine never run at once through the Java API
 * (issue 8 item 5): the second is refused in one line, as QEMU refuses savevm during a migration,
 * and the first one ends exact.
 */
@Timeout(120)
class SaveDuringMigrationTest {
  private static final long MEMORY = 16L << 20;
  /** A thread per task: the tasks below block each other (the common pool may have one thread). */
  private static final java.util.concurrent.Executor THREADS =
      r -> Thread.ofPlatform().daemon().name("save-test").start(r);

  @TempDir Path dir;

  private static MachineHost host(String program) {
    return new MachineHost(Machine.builder().memory(MEMORY).program(program).serial(new ByteArrayOutputStream()).build());
  }

  @Test
  void aSnapshotSaveDuringAMigrationIsRefusedAndTheMigrationStaysExact() throws Exception {
    try (MachineHost src = host("fill");
        MachineHost dst = host("fill")) {
      src.machine().resume();
      awaitTrue(() -> src.machine().cpu(0).pc() >= 2); // fill has written its data and idles
      String uri = "unix:" + dir.resolve("m.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      // 1 MiB/s keeps the migration in its first pass while the saves below try their luck
      src.migration().setParameters(Map.of("max-bandwidth", 1L << 20));
      OutgoingMigration out = src.migration().migrate(uri);
      awaitTrue(() -> src.migration().outgoingState().status() == MigrationStatus.ACTIVE);

      assertThatThrownBy(() -> src.save(dir.resolve("snap.ferry")))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("There's a migration process in progress");
      // the lower-level API: the RAM of this migration is not shared with a second save
      assertThatThrownBy(
              () -> {
                try (MigrationOutput o = new MigrationOutput(Channels.newChannel(new ByteArrayOutputStream()))) {
                  StateSaver.saveSnapshot(src.registry(), o, src.configuration());
                }
              })
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("in progress");
      assertThat(src.machine().dirtyLog().isActive()).as("the migration's dirty log").isTrue();
      assertThat(src.migration().outgoingState().status()).isEqualTo(MigrationStatus.ACTIVE);

      src.migration().setParameters(Map.of("max-bandwidth", 0L));
      assertThat(out.await(60, TimeUnit.SECONDS))
          .as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      incoming.await(60, TimeUnit.SECONDS);
      assertSameState(src, dst);
      assertThat(src.machine().dirtyLog().isActive()).isFalse();
    }
  }

  @Test
  void aMigrationDuringASnapshotSaveIsRefusedAndTheSnapshotStaysExact() throws Exception {
    try (MachineHost src = host("fill");
        MachineHost dst = host("fill")) {
      src.machine().resume();
      awaitTrue(() -> src.machine().cpu(0).pc() >= 2);
      src.machine().pause();
      // the save writes into a FIFO that this test drains: the save stays in progress until then
      Path file = dir.resolve("snap.ferry");
      Path tmp = dir.resolve("snap.ferry.tmp");
      Process mkfifo = new ProcessBuilder("mkfifo", tmp.toString()).inheritIO().start();
      assertThat(mkfifo.waitFor()).isZero();
      CountDownLatch saving = new CountDownLatch(1);
      CountDownLatch drain = new CountDownLatch(1);
      CompletableFuture<byte[]> stream =
          CompletableFuture.supplyAsync(
              () -> {
                try (InputStream in = Files.newInputStream(tmp)) {
                  ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                  bytes.write(in.readNBytes(4096));
                  saving.countDown();
                  drain.await();
                  in.transferTo(bytes);
                  return bytes.toByteArray();
                } catch (Exception e) {
                  saving.countDown();
                  throw new RuntimeException(e);
                }
              },
              THREADS);
      CompletableFuture<Void> save =
          CompletableFuture.runAsync(
              () -> {
                try {
                  src.save(file);
                } catch (Exception e) {
                  throw new RuntimeException(e);
                }
              },
              THREADS);
      assertThat(saving.await(30, TimeUnit.SECONDS)).as("the save began: %s", save).isTrue();
      assertThat(save).isNotDone();

      assertThatThrownBy(() -> src.migration().migrate("unix:" + dir.resolve("nobody.sock")))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("There's a snapshot save in progress");
      assertThatThrownBy(() -> src.save(dir.resolve("other.ferry")))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("There's a snapshot save in progress");
      assertThat(src.migration().outgoing()).as("no migration was made").isNull();

      drain.countDown();
      save.get(60, TimeUnit.SECONDS);
      byte[] bytes = stream.get(60, TimeUnit.SECONDS);
      assertThat(src.machine().runState()).isEqualTo(RunState.PAUSED);
      dst.load(MigrationInput.of(bytes));
      assertSameState(src, dst);
      assertThat(src.machine().dirtyLog().isActive()).isFalse();
    }
  }
}
