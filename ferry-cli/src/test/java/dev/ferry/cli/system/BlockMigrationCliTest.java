package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Disks between two {@code ferry run} processes: the source's guest runs the {@code disk} program
 * (a record into every chunk it passes) on two drives, one of 4.5 MiB (a tail chunk), while a live
 * block migration ({@code migrate blk=true}) moves them over tcp or unix; or both open the same
 * images (shared storage). Then the stopped source's digest (RAM, devices and disk content) equals
 * the destination's before it runs, {@code ferry-disk-check} passes there, and the guest writes on.
 */
@Timeout(300)
class BlockMigrationCliTest {
  private static final long MIB = 1 << 20;

  @ParameterizedTest(name = "{0} shared={1}")
  @CsvSource({"tcp, false", "unix, false", "unix, true"})
  void guestWritingItsDisksMigrates(String transport, boolean shared) throws Exception {
    LiveMigration.Spec spec =
        new LiveMigration.Spec(16 * MIB, "disk", Transport.of(transport), 32 * MIB, null, 16 * MIB, false, true);
    ScenarioRunner.withLogs(new LiveMigration(spec, false), lm -> {
      lm.drives(List.of(new LiveMigration.Drive("drive0", 8 * MIB), new LiveMigration.Drive("d1", 4 * MIB + MIB / 2)), shared);
      lm.startDestinationAndSource();
      assertThat(lm.awaitSourcePasses(1, Duration.ofMinutes(1))).as("the disk program passed over its disks").isTrue();
      lm.migrate();
      MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
      assertThat(end.status().qapiName()).as(end.errorDesc()).isEqualTo("completed");
      JsonNode q = LiveMigration.execute(lm.source().qmp(), "query-migrate", null);
      if (shared) {
        assertThat(q.has("disk")).as("no disk data in the stream with shared storage").isFalse();
      } else {
        assertThat(q.path("disk").path("total").asLong()).isEqualTo(12 * MIB + MIB / 2);
        assertThat(q.path("disk").path("remaining").asLong()).isZero();
        assertThat(q.path("disk").path("transferred").asLong()).isGreaterThanOrEqualTo(13 * MIB);
      }
      ScenarioRunner.awaitRunState(lm.source(), "postmigrate");
      lm.awaitDestinationLoaded(ScenarioRunner.MIGRATION_TIMEOUT);
      LiveMigration.DigestComparison c = lm.compareDigests();
      assertThat(c.difference()).as(c.summary()).isNull();
      assertThat(c.equal()).isTrue();
      assertThat(c.source().sections()).anyMatch(s -> s.idstr().equals("disk:d1") && s.length() == 4 * MIB + MIB / 2);
      JsonNode check = LiveMigration.execute(lm.destination().qmp(), "ferry-disk-check", null);
      assertThat(check.path("passed").asBoolean()).as(check.toString()).isTrue();
      assertThat(check.path("records").asLong()).isEqualTo(13);
      long passes = lm.serialPasses("destination");
      lm.continueDestination();
      ScenarioRunner.awaitRunState(lm.destination(), "running");
      assertThat(lm.awaitDestinationPass(passes, Duration.ofMinutes(1))).as("the guest writes on").isTrue();
      JsonNode again = LiveMigration.execute(lm.destination().qmp(), "ferry-disk-check", null);
      assertThat(again.path("passed").asBoolean()).as(again.toString()).isTrue();
    });
  }
}
