package dev.ferry.cli.live;

import static org.assertj.core.api.Assertions.assertThat;

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

/** The one progress renderer, the one report (text and JSON) and the HTML page. */
class ReportTest {
  static final long MIB = 1L << 20;

  static MigrationInfo info(MigrationStatus st, long transferred, long remaining, long dirtyPagesRate, long pass) {
    MigrationStats r = new MigrationStats(transferred, remaining, 64 * MIB, 100, 0, transferred / 4096, transferred, dirtyPagesRate,
        800.0, pass, 0, 4096, 0, 1000, transferred, st == MigrationStatus.COMPLETED ? MIB : 0, 0, 0);
    return new MigrationInfo(st, r, 1000L, 5L, st == MigrationStatus.COMPLETED ? 42L : null, null, null, null);
  }

  /** A migration whose remaining RAM grows again after the first pass (the guest dirtied pages). */
  static List<MigrationInfo> history() {
    return List.of(
        info(MigrationStatus.SETUP, 0, 64 * MIB, 0, 0),
        info(MigrationStatus.ACTIVE, 32 * MIB, 32 * MIB, 2000, 1),
        info(MigrationStatus.ACTIVE, 60 * MIB, 4 * MIB, 2500, 1),
        info(MigrationStatus.ACTIVE, 62 * MIB, 20 * MIB, 3000, 2), // a sync found 20 MiB dirty again
        info(MigrationStatus.ACTIVE, 70 * MIB, 10 * MIB, 3000, 2),
        info(MigrationStatus.DEVICE, 80 * MIB, 1 * MIB, 3000, 3),
        info(MigrationStatus.COMPLETED, 81 * MIB, 0, 0, 3));
  }

  @Test
  void percentageNeverRunsBackwardsAndAPlainLogGetsTheFinalLine() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ProgressBar bar = new ProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), false, 0);
    history().forEach(bar::update);
    bar.finish();
    List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
    assertThat(lines).hasSize(7);
    int last = -1;
    for (String l : lines) {
      int pct = Integer.parseInt(l.substring(l.indexOf(']') + 1, l.indexOf('%')).strip());
      assertThat(pct).as(l).isGreaterThanOrEqualTo(last);
      last = pct;
    }
    assertThat(lines.get(3)).contains(" 94%"); // held at the 60/64 reached before, not 69%
    assertThat(lines.getLast()).contains("100%", "completed", "pass 3");

    // throttled to one line a second, but each change of phase gets its line (setup, active,
    // device, completed), and the final state its line at finish()
    ByteArrayOutputStream b2 = new ByteArrayOutputStream();
    ProgressBar slow = new ProgressBar(new PrintStream(b2, true, StandardCharsets.UTF_8), false, 60_000);
    history().forEach(slow::update);
    slow.finish();
    List<String> slowLines = b2.toString(StandardCharsets.UTF_8).lines().toList();
    assertThat(slowLines).hasSize(4);
    assertThat(slowLines.get(0)).contains("setup");
    assertThat(slowLines.get(1)).contains("active");
    assertThat(slowLines.get(2)).contains("device");
    assertThat(b2.toString(StandardCharsets.UTF_8).lines().toList().getLast()).contains("100%", "completed");
  }

  static MigrationTimeline timeline() {
    AtomicLong now = new AtomicLong();
    MigrationTimeline t = new MigrationTimeline(now::get);
    for (MigrationInfo i : history()) {
      t.add(i);
      now.addAndGet(100_000_000);
    }
    return t;
  }

  @Test
  void timelineMarksPhasesAndPasses() {
    MigrationTimeline t = timeline();
    assertThat(t.samples()).hasSize(7);
    assertThat(t.samples().get(1).transferRateBytesPerSec()).isEqualTo(320.0 * MIB);
    assertThat(t.samples().get(1).dirtyRateBytesPerSec()).isEqualTo(2000L * 4096);
    assertThat(t.markers()).extracting(MigrationTimeline.Marker::label)
        .containsExactly("setup", "active", "pass 2", "device", "pass 3", "completed");
    assertThat(t.markers().get(3).timeMs()).isEqualTo(500);
  }

  @Test
  void textAndJsonCarryTheSameFigures() throws Exception {
    MigrationReport r = new MigrationReport("Migration report: test", history().getLast(), null);
    r.check("memory check", true, "passed", "stress pattern intact");
    r.timeline(timeline());
    ByteArrayOutputStream text = new ByteArrayOutputStream();
    r.print(new PrintStream(text, true, StandardCharsets.UTF_8));
    assertThat(text.toString(StandardCharsets.UTF_8))
        .startsWith("Migration report: test\n")
        .contains("  status            completed\n", "  downtime              42 ms   limit 300 ms (default)\n",
            "  transferred          81 MiB   84 934 656 bytes\n", "  dirty syncs               3   passes over RAM\n",
            "  memory check         passed   stress pattern intact\n");
    ByteArrayOutputStream json = new ByteArrayOutputStream();
    r.printJson(new PrintStream(json, true, StandardCharsets.UTF_8));
    JsonNode j = new ObjectMapper().readTree(json.toString(StandardCharsets.UTF_8));
    assertThat(j.path("status").asText()).isEqualTo("completed");
    assertThat(j.path("downtime-ms").asLong()).isEqualTo(42);
    assertThat(j.path("downtime-limit-ms").asLong()).isEqualTo(300);
    assertThat(j.path("transferred-bytes").asLong()).isEqualTo(81 * MIB);
    assertThat(j.path("total-time-ms").asLong()).isEqualTo(1000);
    assertThat(j.path("throughput-bytes-per-sec").asLong()).isEqualTo(81 * MIB);
    assertThat(j.path("dirty-sync-count").asLong()).isEqualTo(3);
    assertThat(j.path("checks").get(0).path("passed").asBoolean()).isTrue();
    assertThat(j.path("samples")).hasSize(7);
    assertThat(j.path("samples").get(1).path("transfer-rate-bytes-per-sec").asLong()).isEqualTo(320 * MIB);
  }

  @Test
  void htmlHasAPlotPerSeriesPhaseMarkersAndAnOptionalHistogram() {
    MigrationReport r = new MigrationReport("Migration <report>", history().getLast(), 100L);
    String page = HtmlReport.render(r, timeline(), null);
    assertThat(page).startsWith("<!DOCTYPE html>").contains("<title>Migration &lt;report&gt;</title>")
        .contains("<svg id=\"transfer-rate\"", "<svg id=\"dirty-rate\"", "<svg id=\"remaining\"", "<svg id=\"passes\"")
        .contains(">switch-over</text>", ">setup</text>", ">completed</text>", "class=\"marker\"")
        .doesNotContain("fault-latency", "<script");
    assertThat(page.split("<path class=\"line\"", -1)).hasSize(5);
    String withFaults = HtmlReport.render(r, timeline(),
        new HtmlReport.FaultLatencyHistogram(List.of(10L, 100L, 1000L), List.of(50L, 7L, 1L)));
    assertThat(withFaults).contains("<svg id=\"fault-latency\"", "Postcopy fault latency", "<rect class=\"bar\"");
  }
}
