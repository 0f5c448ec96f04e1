package dev.ferry.cli.live;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * {@code --report FILE.html}: one self-contained page (inline CSS and SVG, no script, nothing
 * fetched) with the text report as a table and plots over time of the transfer rate, the guest's
 * dirty rate, the RAM remaining and the pass, each with the phase markers (setup, active,
 * switch-over, postcopy, completion) as vertical lines; and, when there is one, the postcopy
 * fault-latency histogram.
 */
public final class HtmlReport {
  private static final int W = 860;
  private static final int H = 220;
  private static final int LEFT = 80;
  private static final int RIGHT = 20;
  private static final int TOP = 20;
  private static final int BOTTOM = 36;

  /**
   * Postcopy fault latencies: {@code counts[i]} faults took at most {@code upperBoundsUs[i]}
   * microseconds (and more than the bound before).
   */
  public record FaultLatencyHistogram(List<Long> upperBoundsUs, List<Long> counts) {
    public FaultLatencyHistogram {
      if (upperBoundsUs.size() != counts.size()) {
        throw new IllegalArgumentException("bounds and counts differ in length");
      }
      upperBoundsUs = List.copyOf(upperBoundsUs);
      counts = List.copyOf(counts);
    }
  }

  private HtmlReport() {}

  /** Writes the page; {@code faults} null: no histogram section (no postcopy). */
  public static void write(Path file, MigrationReport report, MigrationTimeline timeline, FaultLatencyHistogram faults)
      throws IOException {
    Files.writeString(file, render(report, timeline, faults), StandardCharsets.UTF_8);
  }

  /** The page as text. */
  public static String render(MigrationReport report, MigrationTimeline timeline, FaultLatencyHistogram faults) {
    StringBuilder sb = new StringBuilder();
    String title = report.title() != null ? report.title() : "Ferry migration report";
    sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>")
        .append(esc(title)).append("</title>\n<style>\n")
        .append("body{font-family:sans-serif;margin:24px;color:#222}")
        .append("table{border-collapse:collapse}td{padding:2px 12px 2px 0}td.v{text-align:right;font-family:monospace}")
        .append("h2{font-size:1.05em;margin:24px 0 4px}svg{background:#fafafa;border:1px solid #ddd}")
        .append(".grid{stroke:#e4e4e4}.axis{font-size:11px;fill:#555}.line{fill:none;stroke-width:2}")
        .append(".marker{stroke:#999;stroke-dasharray:4 3}.mlabel{font-size:10px;fill:#666}.bar{fill:#4a7bd0}\n")
        .append("</style></head><body>\n<h1>").append(esc(title)).append("</h1>\n<table>\n");
    for (MigrationReport.Row r : report.rows()) {
      sb.append("<tr><td>").append(esc(r.name())).append("</td><td class=\"v\">").append(esc(r.value()))
          .append("</td><td>").append(esc(r.note())).append("</td></tr>\n");
    }
    sb.append("</table>\n");
    List<MigrationTimeline.Sample> s = timeline.samples();
    List<MigrationTimeline.Marker> m = timeline.markers();
    plot(sb, "transfer-rate", "Transfer rate", s, m, MigrationTimeline.Sample::transferRateBytesPerSec, "#2b7a3d", true, "/s");
    plot(sb, "dirty-rate", "Guest dirty rate", s, m, x -> x.dirtyRateBytesPerSec(), "#c0392b", true, "/s");
    plot(sb, "remaining", "RAM remaining", s, m, x -> x.remainingBytes(), "#2c5aa0", true, "");
    plot(sb, "passes", "Pass (dirty syncs)", s, m, x -> x.pass(), "#7b3fa0", false, "");
    if (faults != null) {
      histogram(sb, faults);
    }
    sb.append("<p class=\"axis\">Made by ferry from ").append(s.size())
        .append(" query-migrate samples. Dashed lines: phases and passes.</p>\n</body></html>\n");
    return sb.toString();
  }

  private static void plot(StringBuilder sb, String id, String name, List<MigrationTimeline.Sample> samples,
      List<MigrationTimeline.Marker> markers, ToDoubleFunction<MigrationTimeline.Sample> y, String color,
      boolean bytes, String unit) {
    sb.append("<h2>").append(esc(name)).append("</h2>\n");
    sb.append("<svg id=\"").append(id).append("\" xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(W)
        .append("\" height=\"").append(H).append("\" viewBox=\"0 0 ").append(W).append(' ').append(H).append("\">\n");
    long tMax = 1;
    double yMax = 0;
    for (MigrationTimeline.Sample x : samples) {
      tMax = Math.max(tMax, x.timeMs());
      yMax = Math.max(yMax, y.applyAsDouble(x));
    }
    for (MigrationTimeline.Marker mk : markers) {
      tMax = Math.max(tMax, mk.timeMs());
    }
    if (yMax <= 0) {
      yMax = 1;
    }
    int pw = W - LEFT - RIGHT;
    int ph = H - TOP - BOTTOM;
    for (int i = 0; i <= 4; i++) {
      double gy = TOP + ph - ph * i / 4.0;
      double v = yMax * i / 4.0;
      String label = bytes ? Units.bytes(v) + unit : String.format(Locale.ROOT, "%.0f", v);
      sb.append(String.format(Locale.ROOT, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", LEFT, gy, W - RIGHT, gy))
          .append(String.format(Locale.ROOT, "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 6, gy + 4, esc(label)));
    }
    for (int i = 0; i <= 5; i++) {
      double gx = LEFT + pw * i / 5.0;
      sb.append(String.format(Locale.ROOT, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f s</text>", gx, H - 12, tMax * i / 5.0 / 1000));
    }
    sb.append('\n');
    for (MigrationTimeline.Marker mk : markers) {
      double mx = LEFT + pw * (double) mk.timeMs() / tMax;
      sb.append(String.format(Locale.ROOT, "<line class=\"marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", mx, TOP, mx, TOP + ph));
      if (mk.kind().equals("phase")) {
        String label = mk.label().equals("device") ? "switch-over" : mk.label();
        sb.append(String.format(Locale.ROOT, "<text class=\"mlabel\" x=\"%.1f\" y=\"%d\">%s</text>", mx + 3, TOP + 10, esc(label)));
      }
      sb.append('\n');
    }
    if (!samples.isEmpty()) {
      StringBuilder d = new StringBuilder();
      for (MigrationTimeline.Sample x : samples) {
        double px = LEFT + pw * (double) x.timeMs() / tMax;
        double py = TOP + ph - ph * y.applyAsDouble(x) / yMax;
        d.append(d.isEmpty() ? "M" : " L").append(String.format(Locale.ROOT, "%.1f %.1f", px, py));
      }
      if (samples.size() == 1) {
        d.append(String.format(Locale.ROOT, " L%.1f %.1f", (double) W - RIGHT, TOP + ph - ph * y.applyAsDouble(samples.getFirst()) / yMax));
      }
      sb.append("<path class=\"line\" stroke=\"").append(color).append("\" d=\"").append(d).append("\"/>\n");
    }
    sb.append("</svg>\n");
  }

  private static void histogram(StringBuilder sb, FaultLatencyHistogram h) {
    sb.append("<h2>Postcopy fault latency</h2>\n");
    sb.append("<svg id=\"fault-latency\" xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(W)
        .append("\" height=\"").append(H).append("\" viewBox=\"0 0 ").append(W).append(' ').append(H).append("\">\n");
    long max = 1;
    for (long c : h.counts()) {
      max = Math.max(max, c);
    }
    int n = Math.max(1, h.counts().size());
    int pw = W - LEFT - RIGHT;
    int ph = H - TOP - BOTTOM;
    double bw = (double) pw / n;
    for (int i = 0; i < h.counts().size(); i++) {
      double bh = ph * (double) h.counts().get(i) / max;
      double x = LEFT + i * bw;
      sb.append(String.format(Locale.ROOT, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>&#8804; %d us: %d faults</title></rect>",
          x + 1, TOP + ph - bh, Math.max(1, bw - 2), bh, h.upperBoundsUs().get(i), h.counts().get(i)));
      sb.append(String.format(Locale.ROOT, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d us</text>\n", x + bw / 2, H - 12, h.upperBoundsUs().get(i)));
    }
    sb.append(String.format(Locale.ROOT, "<text class=\"axis\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>", LEFT - 6, TOP + 4, max));
    sb.append("</svg>\n");
  }

  private static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
