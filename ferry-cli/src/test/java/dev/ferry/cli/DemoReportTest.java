package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry demo --json --report}: one JSON document with every figure, and the HTML page. */
class DemoReportTest {
  @TempDir Path dir;

  @Test
  void demoPrintsOneJsonDocumentAndWritesTheHtmlPage() throws Exception {
    Path html = dir.resolve("demo.html");
    FerryProcess p = FerryProcess.run(dir, Duration.ofMinutes(5), "demo", "--memory", "32M", "--program", "stress",
        "--transport", "unix", "--warmup-ms", "100", "--json", "--report", html.toString());
    assertThat(p.exitCode()).as(p.stderr()).isZero();
    JsonNode j = new ObjectMapper().readTree(p.stdout()); // the whole of stdout is one document
    assertThat(j.path("status").asText()).isEqualTo("completed");
    assertThat(j.path("guest-memory-bytes").asLong()).isEqualTo(32L << 20);
    assertThat(j.path("program").asText()).isEqualTo("stress");
    assertThat(j.path("transport").asText()).isEqualTo("unix");
    assertThat(j.path("transferred-bytes").asLong()).isPositive();
    assertThat(j.path("downtime-ms").isIntegralNumber()).isTrue();
    assertThat(j.path("raw-copy").path("bytes-per-sec").asLong()).isPositive();
    // the exact comparison the demo made: stopped source = destination before it ran
    assertThat(j.path("digest").path("equal").asBoolean()).isTrue();
    assertThat(j.path("digest").path("ram").asText()).isNotEmpty();
    assertThat(j.path("checks").findValuesAsText("name")).contains("digest", "memory check", "guest");
    assertThat(j.path("checks").findValues("passed")).allMatch(JsonNode::asBoolean);
    assertThat(j.path("samples").size()).isPositive();
    String page = Files.readString(html);
    assertThat(page).contains("<svg id=\"transfer-rate\"", "<svg id=\"passes\"", ">digest</td>");
    // the progress went to stderr and ended with its final line
    assertThat(p.stderr()).contains("100%");
  }
}
