package dev.ferry.cli.live;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The switch rule of --postcopy, and the report's postcopy figures (text and JSON). */
class PostcopyReportTest {
  static MigrationInfo info(MigrationStatus st, long pass, long totalMs, long requests, long postcopyBytes) {
    MigrationStats r = new MigrationStats(1 << 20, 0, 64 << 20, 0, 0, 0, 0, 0, 0, pass, requests, 4096, 0, 0, 0, 0,
        postcopyBytes, 0);
    return new MigrationInfo(st, r, totalMs, 5L, st == MigrationStatus.COMPLETED ? 4L : null, null, null, null);
  }

  @Test
  void theSwitchComesAfterTheFirstPassOrAfterSecondsAndOnce() {
    PostcopySwitch firstPass = new PostcopySwitch(null);
    assertThat(firstPass.due(info(MigrationStatus.SETUP, 0, 0, 0, 0))).isFalse();
    assertThat(firstPass.due(info(MigrationStatus.ACTIVE, 1, 100, 0, 0))).isFalse();
    assertThat(firstPass.due(info(MigrationStatus.ACTIVE, 2, 200, 0, 0))).isTrue();
    assertThat(firstPass.due(info(MigrationStatus.ACTIVE, 3, 300, 0, 0))).as("once").isFalse();
    PostcopySwitch timed = new PostcopySwitch(1.5);
    assertThat(timed.due(info(MigrationStatus.ACTIVE, 5, 1499, 0, 0))).isFalse();
    assertThat(timed.due(info(MigrationStatus.ACTIVE, 5, 1500, 0, 0))).isTrue();
    assertThat(new PostcopySwitch(0.0).due(info(MigrationStatus.COMPLETED, 5, 10, 0, 0))).as("only while active").isFalse();
    assertThatThrownBy(() -> new PostcopySwitch(-1.0)).hasMessageContaining("--postcopy-after must be");
  }

  @Test
  void reportHasPrecopyPausePostcopyRequestsBackgroundBlocktimeAndLatency() throws Exception {
    AtomicLong now = new AtomicLong();
    MigrationTimeline t = new MigrationTimeline(now::get);
    long[] at = {0, 100, 400, 700};
    List<MigrationInfo> h = List.of(
        info(MigrationStatus.SETUP, 0, 0, 0, 0),
        info(MigrationStatus.ACTIVE, 2, 100, 0, 0),
        info(MigrationStatus.POSTCOPY_ACTIVE, 2, 400, 3, 4096),
        info(MigrationStatus.COMPLETED, 2, 710, 10, 100 * 4096));
    for (int i = 0; i < h.size(); i++) {
      now.set(at[i] * 1_000_000);
      t.add(h.get(i));
    }
    JsonNode destRaw = new ObjectMapper().readTree(
        "{\"status\":\"completed\",\"postcopy-blocktime\":3,\"postcopy-vcpu-blocktime\":[3],"
            + "\"x-ferry-postcopy-fault-latency\":{\"count\":10,\"p50-us\":40,\"p99-us\":900,\"max-us\":1200}}");
    MigrationReport r = new MigrationReport("t", h.getLast(), null).postcopy(t, MigrationInfo.fromJson(destRaw), destRaw);
    JsonNode p = r.json().path("postcopy");
    assertThat(p.path("switched").asBoolean()).isTrue();
    assertThat(p.path("postcopy-time-ms").asLong()).isEqualTo(300);
    assertThat(p.path("pause-ms").asLong()).isEqualTo(4);
    assertThat(p.path("precopy-time-ms").asLong()).isEqualTo(710 - 300 - 4);
    assertThat(p.path("pages-requested").asLong()).isEqualTo(10);
    assertThat(p.path("background-pages").asLong()).isEqualTo(90);
    assertThat(p.path("blocktime-ms").asLong()).isEqualTo(3);
    assertThat(p.path("fault-latency-p50-us").asLong()).isEqualTo(40);
    assertThat(p.path("fault-latency-p99-us").asLong()).isEqualTo(900);
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    r.print(new PrintStream(b, true, StandardCharsets.UTF_8));
    assertThat(b.toString(StandardCharsets.UTF_8))
        .contains("precopy time", "pause", "postcopy", "requested", "background", "blocktime", "fault p50/99", "40 / 900 us");

    // no switch: said so, no figures
    MigrationTimeline pre = new MigrationTimeline(now::get);
    pre.add(info(MigrationStatus.ACTIVE, 1, 100, 0, 0));
    pre.add(info(MigrationStatus.COMPLETED, 2, 200, 0, 0));
    MigrationReport r2 = new MigrationReport("t", info(MigrationStatus.COMPLETED, 2, 200, 0, 0), null).postcopy(pre, null, null);
    assertThat(r2.json().path("postcopy").path("switched").asBoolean()).isFalse();
    assertThat(r2.rows()).anyMatch(row -> row.name().equals("postcopy") && row.value().equals("not reached"));
  }
}
