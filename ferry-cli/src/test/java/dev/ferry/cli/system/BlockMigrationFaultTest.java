package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A live block migration between two {@code ferry run} processes broken off during its bulk phase:
 * the destination process killed (SIGKILL) while the source's guest writes its disk, the same with
 * the source's guest stopped (so its digest, RAM, devices and disk content, can be compared exactly
 * before and after), and {@code migrate_cancel}. Each time the source reports the end ({@code
 * failed} with a one-line {@code error-desc}, or {@code cancelled}), keeps its run state and its
 * disks ({@code ferry-disk-check} passes; the guest writes on), and finally a migration to a fresh
 * destination completes with equal digests and the disk check passing there.
 */
@Tag("slow")
@Timeout(300)
class BlockMigrationFaultTest {
  private static final long MIB = 1 << 20;

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = Transport.class, names = {"TCP"})
  void killedDestinationOrCancelDuringTheBulkPhaseLeaveTheSourceAndItsDisks(Transport t) throws Exception {
    // 8 MiB/s: the bulk phase over 40 MiB of disk takes about 5 s; the guest writes 16 records a second
    LiveMigration.Spec spec = new LiveMigration.Spec(16 * MIB, "disk", t, 8 * MIB, null, 16 * MIB, false, true);
    ScenarioRunner.withLogs(new LiveMigration(spec, false), lm -> {
      lm.drives(List.of(new LiveMigration.Drive("drive0", 32 * MIB), new LiveMigration.Drive("d1", 8 * MIB + MIB / 2)), false);
      lm.startDestinationAndSource();
      assertThat(lm.awaitSourcePasses(1, Duration.ofMinutes(1))).as("the disk program passed over its disks").isTrue();

      // 1. SIGKILL to the destination while the source's guest writes its disks
      breakOffBulk(lm, true);
      assertSourceRunsOnWithItsDisks(lm);

      // 2. the same with the source's guest stopped: nothing of the source changed
      LiveMigration.execute(lm.source().qmp(), "stop", null);
      ScenarioRunner.awaitRunState(lm.source(), "paused");
      MemoryDigest before = LiveMigration.digest(lm.source());
      freshDestination(lm);
      breakOffBulk(lm, true);
      assertThat(LiveMigration.runState(lm.source())).isEqualTo("paused");
      MemoryDigest after = LiveMigration.digest(lm.source());
      assertThat(before.firstDifference(after)).as("the stopped source's RAM, devices and disks after the failed migration").isEmpty();
      LiveMigration.execute(lm.source().qmp(), "cont", null);
      assertSourceRunsOnWithItsDisks(lm);

      // 3. migrate_cancel during the bulk phase
      freshDestination(lm);
      breakOffBulk(lm, false);
      assertSourceRunsOnWithItsDisks(lm);

      // 4. a fresh destination, no bandwidth limit: completes, exactly
      lm.destination().kill(); // its load failed with the cancel (it may have exited already)
      freshDestination(lm);
      LiveMigration.execute(lm.source().qmp(), "migrate-set-parameters", JsonNodeFactory.instance.objectNode().put("max-bandwidth", 16L << 30));
      lm.migrate();
      MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
      assertThat(end.status().qapiName()).as("retry: %s", end.errorDesc()).isEqualTo("completed");
      ScenarioRunner.awaitRunState(lm.source(), "postmigrate");
      lm.awaitDestinationLoaded(ScenarioRunner.MIGRATION_TIMEOUT);
      LiveMigration.DigestComparison c = lm.compareDigests();
      assertThat(c.difference()).as(c.summary()).isNull();
      JsonNode check = LiveMigration.execute(lm.destination().qmp(), "ferry-disk-check", null);
      assertThat(check.path("passed").asBoolean()).as(check.toString()).isTrue();
      lm.continueDestination();
      ScenarioRunner.awaitRunState(lm.destination(), "running");
    });
  }

  /**
   * Migrates with {@code blk}, waits until some disk data went but the bulk phase is far from done,
   * then kills the destination ({@code kill}) or cancels; the source must say so.
   */
  private static void breakOffBulk(LiveMigration lm, boolean kill) throws Exception {
    lm.migrate();
    JsonNode disk;
    long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
    do {
      assertThat(System.nanoTime() - deadline).as("disk data on the way").isNegative();
      Thread.sleep(5);
      JsonNode q = LiveMigration.execute(lm.source().qmp(), "query-migrate", null);
      assertThat(q.path("status").asText()).isIn("setup", "active");
      disk = q.path("disk");
    } while (disk.path("transferred").asLong() < 2 * MIB);
    assertThat(disk.path("transferred").asLong()).as("still in the bulk phase").isLessThan(disk.path("total").asLong() / 2);
    if (kill) {
      lm.destination().kill();
    } else {
      LiveMigration.execute(lm.source().qmp(), "migrate_cancel", null);
    }
    MigrationInfo end = lm.awaitEnd(Duration.ofMillis(20), Duration.ofMinutes(1), null);
    if (kill) {
      assertThat(end.status().qapiName()).isEqualTo("failed");
      assertThat(end.errorDesc()).isNotBlank().doesNotContain("\n");
    } else {
      assertThat(end.status().qapiName()).isEqualTo("cancelled");
    }
  }

  /** The source runs, its disks check, and its guest writes on (another pass) and they still check. */
  private static void assertSourceRunsOnWithItsDisks(LiveMigration lm) throws Exception {
    ScenarioRunner.awaitRunState(lm.source(), "running");
    JsonNode check = LiveMigration.execute(lm.source().qmp(), "ferry-disk-check", null);
    assertThat(check.path("passed").asBoolean()).as(check.toString()).isTrue();
    long passes = lm.serialPasses("source");
    assertThat(lm.awaitSourcePasses(passes + 1, Duration.ofMinutes(1))).as("the source's guest writes on").isTrue();
    JsonNode again = LiveMigration.execute(lm.source().qmp(), "ferry-disk-check", null);
    assertThat(again.path("passed").asBoolean()).as(again.toString()).isTrue();
  }

  /** A new destination process with new (sparse) images. */
  private static void freshDestination(LiveMigration lm) throws Exception {
    for (LiveMigration.Drive d : lm.drives()) {
      Files.deleteIfExists(lm.driveImage("destination", d.id()));
    }
    lm.startDestination();
  }
}
