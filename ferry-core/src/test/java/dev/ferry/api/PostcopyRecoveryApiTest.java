package dev.ferry.api;

import static dev.ferry.api.VcpuProgramTest.WAIT;
import static dev.ferry.api.VcpuProgramTest.assertConsistent;
import static dev.ferry.api.VcpuProgramTest.await;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Postcopy recovery through the API: a postcopy migration is paused (from the source, then from the
 * destination), both handles report postcopy-paused with the reason, the destination recovers on a
 * new listener, the source resumes there, and the migration completes with the stopped source's
 * exact state on the destination (whose vCPUs are held: autostart off).
 */
@Timeout(120)
class PostcopyRecoveryApiTest {
  /** Slow enough that the postcopy phase lasts while the test pauses and recovers twice. */
  static MigrationOptions.Builder postcopy() {
    return MigrationOptions.builder()
        .enable(MigrationOptions.Capability.POSTCOPY_RAM)
        .maxBandwidthBytesPerSec(1 << 20)
        .maxPostcopyBandwidthBytesPerSec(256 << 10);
  }

  @Test
  void pauseRecoverResumeEndsWithTheSourcesExactState(@TempDir Path dir) throws Exception {
    try (FerryMachine src = VcpuProgramTest.machine();
        FerryMachine dst = VcpuProgramTest.machine()) {
      List<MigrationEvent> dstEvents = new CopyOnWriteArrayList<>();
      dst.addMigrationListener(dstEvents::add);
      src.start();
      await(() -> VcpuProgramTest.counter(src, 0) > 1000, "the source to step");
      Migration in = dst.incoming("unix:" + dir.resolve("m.sock"), postcopy().autostart(false).build());
      Migration out = src.migrate(in.listeningUri(WAIT), postcopy().build());
      assertThatThrownBy(out::pause).hasMessage("migrate-pause is currently only supported during postcopy-active state");
      out.startPostcopy();
      // POSTCOPY_RUN processed: the destination left inmigrate (paused, autostart off)
      await(() -> dst.runState() == RunState.PAUSED, "the destination to process POSTCOPY_RUN");
      assertThat(out.status()).isEqualTo(MigrationStatus.POSTCOPY_ACTIVE);

      // 1. paused from the source
      out.pause();
      assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      assertThat(out.error()).hasValueSatisfying(e -> assertThat(e).contains("resume"));
      assertThat(in.error()).hasValueSatisfying(e -> assertThat(e).contains("pages are still missing"));
      assertThatThrownBy(() -> out.recover("unix:" + dir.resolve("x.sock"))).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> in.resume("unix:" + dir.resolve("x.sock"))).isInstanceOf(IllegalStateException.class);
      String recoverUri = in.recover("unix:" + dir.resolve("r1.sock"));
      assertThatThrownBy(() -> in.recover("unix:" + dir.resolve("r1b.sock"))).hasMessage("Migrate recovery is triggered already");
      out.resume(recoverUri);
      await(() -> out.status() == MigrationStatus.POSTCOPY_ACTIVE && in.status() == MigrationStatus.POSTCOPY_ACTIVE,
          "both sides to be postcopy-active again");

      // 2. paused from the destination
      in.pause();
      assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.POSTCOPY_PAUSED);
      out.resume(in.recover("unix:" + dir.resolve("r2.sock")));

      assertThat(out.await(WAIT)).as(out.error().orElse("")).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(in.await(WAIT)).as(in.error().orElse("")).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.runState()).isEqualTo(RunState.POSTMIGRATE);
      assertThat(src.digest().firstDifference(dst.digest())).isEmpty();
      assertConsistent(dst);
      assertThat(dstEvents)
          .filteredOn(e -> e instanceof MigrationEvent.StatusChanged)
          .extracting(e -> ((MigrationEvent.StatusChanged) e).to())
          .contains(MigrationStatus.POSTCOPY_PAUSED, MigrationStatus.POSTCOPY_RECOVER, MigrationStatus.COMPLETED);
      assertThatThrownBy(out::pause).isInstanceOf(IllegalStateException.class);
    }
  }
}
