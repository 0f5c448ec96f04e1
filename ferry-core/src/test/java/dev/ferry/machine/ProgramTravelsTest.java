package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.PipeConnection;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8 item 6: the guest program is state. A destination runs the program (and the settings)
 * the stream's cpu state names; one pinned to another program refuses the stream naming both.
 */
@Timeout(120)
class ProgramTravelsTest {
  private static final long MEMORY = 4 << 20;
  /** Not the defaults: the settings travel in cpu/program. */
  private static final ProgramOptions RANDOM_OPTIONS =
      ProgramOptions.defaults().withPagesPerStep(16).withDirtyRateBytesPerSec(8L << 20).withSeed(42);

  @TempDir Path dir;

  static MachineHost randomSource() throws InterruptedException {
    MachineHost src = new MachineHost(Machine.builder().memory(MEMORY).program("random").programOptions(RANDOM_OPTIONS).build());
    src.machine().resume();
    while (src.machine().cpu(0).reg(2) < 64) { // pages written
      Thread.sleep(1);
    }
    return src;
  }

  /** Migrates {@code src} into {@code dst} (return path on); returns the destination's load error or null. */
  static Throwable migrate(MachineHost src, MachineHost dst, MigrationStatus expected) throws Exception {
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
    PipeConnection[] pair = PipeConnection.pair();
    CompletableFuture<Throwable> load = CompletableFuture.supplyAsync(() -> {
      try (PipeConnection c = pair[1]) {
        dst.incoming(c);
        return null;
      } catch (Throwable t) {
        return t;
      }
    });
    OutgoingMigration o = src.migration().migrate(() -> pair[0]);
    assertThat(o.await(60, TimeUnit.SECONDS)).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(expected);
    return load.get(60, TimeUnit.SECONDS);
  }

  @Test
  void aRandomGuestRunsOnAsRandomInADestinationConfiguredForStress() throws Exception {
    try (MachineHost src = randomSource();
        MachineHost dst = new MachineHost(Machine.builder().memory(MEMORY).program("stress").build())) {
      assertThat(migrate(src, dst, MigrationStatus.COMPLETED)).isNull();
      ExactState.assertSame(src, dst);
      Machine d = dst.machine();
      assertThat(d.program().name()).isEqualTo("random");
      assertThat(d.programOptions().dirtyRateBytesPerSec()).isEqualTo(RANDOM_OPTIONS.dirtyRateBytesPerSec());
      assertThat(d.programOptions().seed()).isEqualTo(42);
      // the destination's own step size stays
      assertThat(d.programOptions().pagesPerStep()).isEqualTo(ProgramOptions.DEFAULT_PAGES_PER_STEP);
      // and it runs on as random (stress would fail at its first step on random's registers)
      dst.startAfterLoad(false);
      long written = d.cpu(0).reg(2);
      while (d.cpu(0).reg(2) < written + 64 && d.vcpuFailure() == null) {
        Thread.sleep(1);
      }
      assertThat(d.vcpuFailure()).isNull();
      assertThat(d.runState()).isEqualTo(RunState.RUNNING);
    }
  }

  @Test
  void aDestinationPinnedToAnotherProgramRefusesTheStreamNamingBoth() throws Exception {
    try (MachineHost src = randomSource();
        MachineHost dst = new MachineHost(Machine.builder().memory(MEMORY).program("stress").pinProgram(true).build())) {
      Throwable err = migrate(src, dst, MigrationStatus.FAILED);
      assertThat(err).hasMessage(
          "program mismatch: the stream's guest runs program 'random', this machine was started with program 'stress'");
      assertThat(dst.machine().runState()).isEqualTo(RunState.INTERNAL_ERROR);
      assertThat(src.migration().outgoingState().errorDesc()).contains("SHUT 1");
      assertThat(src.machine().isRunning()).as("the source runs on").isTrue();
    }
  }

  @Test
  void aSnapshotCarriesItsProgramToo() throws Exception {
    Path file = dir.resolve("random.ferry");
    try (MachineHost src = randomSource()) {
      src.machine().pause();
      src.save(file);
      try (MachineHost dst = new MachineHost(Machine.builder().memory(MEMORY).build())) { // default: idle
        dst.load(file);
        assertThat(dst.machine().program().name()).isEqualTo("random");
        ExactState.assertSame(src, dst);
      }
      try (MachineHost pinned = new MachineHost(Machine.builder().memory(MEMORY).program("fill").pinProgram(true).build())) {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> pinned.load(file))
            .hasMessage("program mismatch: the stream's guest runs program 'random', this machine was started with program 'fill'");
      }
    }
  }

  @Test
  void defaultSettingsAddNoSubsectionSoOlderBuildsStillLoadTheStream() throws Exception {
    try (MachineHost src = new MachineHost(Machine.builder().memory(MEMORY).program("fill").build())) {
      assertThat(CpuDevice.PROGRAM.isNeeded(src.machine().cpu(0))).isFalse();
    }
    try (MachineHost src = new MachineHost(Machine.builder().memory(MEMORY).program("random").programOptions(RANDOM_OPTIONS).build())) {
      assertThat(CpuDevice.PROGRAM.isNeeded(src.machine().cpu(0))).isTrue();
    }
  }
}
