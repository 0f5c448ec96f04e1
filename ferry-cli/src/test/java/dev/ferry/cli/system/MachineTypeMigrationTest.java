package dev.ferry.cli.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.qmp.qapi.MigrationInfo;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 9 item 5, machine types between two {@code ferry run} processes: a source started with
 * the older type ({@code --machine ferry-1.0}) migrates to a destination of that type (exact
 * digest, stress pattern, the guest runs on); a source of the newer (default) type is refused by
 * that destination, which names both types, and the source runs on.
 */
@Timeout(300)
class MachineTypeMigrationTest {
  private static LiveMigration.Spec spec() {
    return new LiveMigration.Spec(32L << 20, "stress", Transport.UNIX, null, null, null, false, true);
  }

  @Test
  void newerToOlderWorksWhenTheOlderTypeIsChosen() throws Exception {
    ScenarioRunner.withLogs(new LiveMigration(spec(), false).machineTypes("ferry-1.0", "ferry-1.0"), lm -> {
      lm.startDestinationAndSource();
      assertThat(lm.source().lines()).anyMatch(l -> l.contains("; machine=ferry-1.0;"));
      assertThat(lm.destination().lines()).anyMatch(l -> l.contains("; machine=ferry-1.0;"));
      JsonNode machines = LiveMigration.execute(lm.source().qmp(), "query-machines",
          JsonNodeFactory.instance.objectNode().put("compat-props", true));
      List<String> names = new ArrayList<>();
      machines.forEach(m -> names.add(m.path("name").asText()));
      assertThat(names).containsExactly("ferry-1.0", "ferry-1.1");
      assertThat(machines.get(1).path("is-default").asBoolean()).isTrue();
      assertThat(machines.get(0).has("is-default")).isFalse();
      assertThat(machines.get(0).path("compat-props").toString()).contains("\"qom-type\":\"cpu\",\"property\":\"layout\",\"value\":\"1\"");
      ScenarioRunner.warmUp(lm, "stress");
      lm.migrate();
      MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
      assertThat(end.status().qapiName()).as("%s", end.errorDesc()).isEqualTo("completed");
      ScenarioRunner.awaitRunState(lm.source(), "postmigrate");
      ScenarioRunner.checkDestinationAndRunOn(lm, "stress");
    });
  }

  @Test
  void theNewerTypeIsRefusedByTheOlderTypesDestinationNamingBoth() throws Exception {
    ScenarioRunner.withLogs(new LiveMigration(spec(), false).machineTypes(null, "ferry-1.0"), lm -> {
      lm.startDestinationAndSource();
      assertThat(lm.source().lines()).anyMatch(l -> l.contains("; machine=ferry-1.1;"));
      ScenarioRunner.warmUp(lm, "stress");
      lm.migrate();
      MigrationInfo end = lm.awaitEnd(Duration.ofMillis(50), ScenarioRunner.MIGRATION_TIMEOUT, null);
      assertThat(end.status().qapiName()).isEqualTo("failed");
      assertThat(end.errorDesc()).isNotBlank();
      assertThat(lm.destination().awaitExit(Duration.ofMinutes(1))).isEqualTo(1);
      assertThat(lm.destination().lines())
          .filteredOn(l -> l.contains("Machine type received is 'ferry-1.1' and local is 'ferry-1.0'"))
          .hasSize(1);
      assertThat(LiveMigration.runState(lm.source())).isEqualTo("running");
      long passes = lm.serialPasses("source");
      assertThat(lm.awaitSourcePasses(passes + 1, Duration.ofMinutes(1))).as("the source's guest runs on").isTrue();
    });
  }
}
