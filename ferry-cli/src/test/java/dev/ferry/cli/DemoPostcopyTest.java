package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** {@code ferry demo --postcopy}: two processes, the switch to postcopy, the exact digest check. */
class DemoPostcopyTest {
  @Test
  void postcopyDemoReachesPostcopyAndTheDigestsAreEqual() throws Exception {
    // 64 MiB/s and a 1 ms limit: what the stress guest dirties never fits the switch-over threshold,
    // so the switch after the first pass really goes to postcopy
    Cli.Run r = Cli.ferry("demo", "--postcopy", "--memory", "64M", "--transport", "tcp", "--bandwidth", "64M",
        "--downtime-limit", "1", "--warmup-ms", "100", "--json");
    assertThat(r.code()).as(r.err() + r.out()).isZero();
    JsonNode j = new ObjectMapper().readTree(r.out());
    assertThat(j.path("status").asText()).isEqualTo("completed");
    JsonNode p = j.path("postcopy");
    assertThat(p.path("switched").asBoolean()).as(r.err() + r.out()).isTrue();
    assertThat(p.path("postcopy-time-ms").isNumber()).isTrue();
    assertThat(p.path("pause-ms").isNumber()).isTrue();
    assertThat(p.path("pages-requested").isNumber()).isTrue();
    assertThat(p.path("background-pages").asLong()).isPositive();
    assertThat(p.path("blocktime-ms").isNumber()).as("destination started with postcopy-blocktime").isTrue();
    assertThat(p.has("fault-latency-p50-us")).isTrue();
    assertThat(j.path("postcopy-bytes").asLong()).isPositive();
    assertThat(j.path("digest").path("equal").asBoolean()).isTrue();
    boolean sawPhase = false;
    for (JsonNode m : j.path("markers")) {
      sawPhase |= m.path("label").asText().equals("postcopy-active");
    }
    assertThat(sawPhase).as("a postcopy-active phase marker").isTrue();
    assertThat(r.err()).contains("postcopy-active");
  }

  @Test
  void postcopyOptionsAreChecked() {
    Cli.Run a = Cli.ferry("demo", "--postcopy-after", "1");
    assertThat(a.code()).isEqualTo(2);
    assertThat(a.err()).contains("--postcopy-after needs --postcopy");
    Cli.Run b = Cli.ferry("demo", "--postcopy", "--transport", "file");
    assertThat(b.code()).isEqualTo(2);
    assertThat(b.err()).contains("--postcopy needs a transport with a return path");
    Cli.Run c = Cli.ferry("migrate", "--qmp", "unix:nowhere.qmp", "--postcopy-after", "1", "tcp:127.0.0.1:1");
    assertThat(c.code()).isEqualTo(2);
    assertThat(c.err()).contains("--postcopy-after needs --postcopy");
  }
}
