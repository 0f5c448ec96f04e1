package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.qmp.QmpClient;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code --report} page of a real migration, rendered by headless Chromium (Debian's {@code
 * chromium}; skipped, saying so, when it is not installed): the DOM Chromium built holds the four
 * plots' paths, and the screenshot shows them drawn in their colours.
 */
@Tag("slow")
class HtmlReportChromiumTest {
  private static final Duration START = Duration.ofSeconds(120);

  @TempDir Path dir;

  private static String chromium() {
    for (String c : List.of("chromium", "chromium-browser", "google-chrome")) {
      for (String p : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
        if (Files.isExecutable(Path.of(p, c))) {
          return Path.of(p, c).toString();
        }
      }
    }
    return null;
  }

  private String runChromium(String chromium, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--user-data-dir=" + dir.resolve("profile")));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectError(dir.resolve("chromium.err").toFile()).start();
    byte[] out = p.getInputStream().readAllBytes();
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    return new String(out, StandardCharsets.UTF_8);
  }

  @Test
  void theReportOfAMigrationDrawsInChromium() throws Exception {
    String chromium = chromium();
    Assumptions.assumeTrue(chromium != null,
        "headless Chromium is not installed (apt-get install -y chromium): the HTML report is not rendered");
    Path srcSock = dir.resolve("src.qmp");
    Path dstSock = dir.resolve("dst.qmp");
    Path html = dir.resolve("report.html");
    try (FerryProcess dst = FerryProcess.start(dir, "run", "--memory", "64M", "--incoming", "tcp:127.0.0.1:0", "--paused",
            "--qmp", "unix:" + dstSock);
        FerryProcess src = FerryProcess.start(dir, "run", "--memory", "64M", "--program", "random", "--dirty-rate", "32M",
            "--qmp", "unix:" + srcSock)) {
      String incoming = dst.awaitReady(START).get("incoming");
      src.awaitReady(START);
      FerryProcess mig = FerryProcess.run(dir, START, "migrate", "--qmp", "unix:" + srcSock, "--bandwidth", "64M",
          "--report", html.toString(), incoming);
      assertThat(mig.exitCode()).as(mig.stderr()).isZero();
      dst.awaitStderrLine(l -> l.equals(RunCommand.LOADED_PREFIX + "paused"), START);
      try (QmpClient s = QmpClient.connect("unix:" + srcSock); QmpClient d = QmpClient.connect("unix:" + dstSock)) {
        JsonNode sd = s.execute("ferry-memory-digest");
        JsonNode dd = d.execute("ferry-memory-digest");
        assertThat(dd.path("ram").asText()).isEqualTo(sd.path("ram").asText());
        assertThat(dd.path("devices").asText()).isEqualTo(sd.path("devices").asText());
        s.execute("quit");
        d.execute("quit");
      }
    }
    String dom = runChromium(chromium, "--dump-dom", html.toUri().toString());
    for (String id : List.of("transfer-rate", "dirty-rate", "remaining", "passes")) {
      assertThat(dom).contains("<svg id=\"" + id + "\"");
    }
    assertThat(dom.split("<path class=\"line\"", -1).length - 1).isEqualTo(4);
    assertThat(dom).contains(">completed</text>", ">switch-over</text>");

    Path png = dir.resolve("report.png");
    runChromium(chromium, "--window-size=1000,1400", "--hide-scrollbars", "--screenshot=" + png, html.toUri().toString());
    BufferedImage img = ImageIO.read(png.toFile());
    assertThat(img).as("screenshot " + Files.readString(dir.resolve("chromium.err"))).isNotNull();
    int transferGreen = 0;
    int remainingBlue = 0;
    int nonWhite = 0;
    for (int y = 0; y < img.getHeight(); y++) {
      for (int x = 0; x < img.getWidth(); x++) {
        int rgb = img.getRGB(x, y) & 0xffffff;
        if (rgb != 0xffffff) {
          nonWhite++;
        }
        if (near(rgb, 0x2b7a3d)) {
          transferGreen++;
        }
        if (near(rgb, 0x2c5aa0)) {
          remainingBlue++;
        }
      }
    }
    assertThat(nonWhite).isGreaterThan(10_000);
    assertThat(transferGreen).as("pixels of the transfer-rate line").isGreaterThan(50);
    assertThat(remainingBlue).as("pixels of the remaining-RAM line").isGreaterThan(50);
  }

  private static boolean near(int rgb, int want) {
    int dr = Math.abs(((rgb >> 16) & 0xff) - ((want >> 16) & 0xff));
    int dg = Math.abs(((rgb >> 8) & 0xff) - ((want >> 8) & 0xff));
    int db = Math.abs((rgb & 0xff) - (want & 0xff));
    return dr + dg + db < 24;
  }
}
