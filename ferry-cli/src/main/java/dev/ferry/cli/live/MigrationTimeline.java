package dev.ferry.cli.live;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationStats;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * A migration over time, from the successive {@code query-migrate} answers a client polls: each
 * sample's time, transfer rate (between this answer and the one before), the guest's dirty rate,
 * the RAM remaining and the pass (dirty syncs); and the phase markers — the first answer in each
 * status ({@code setup}, {@code active}, {@code device}: the switch-over, {@code postcopy-active},
 * {@code completed}/{@code failed}/{@code cancelled}) and each new pass. A switch-over shorter than
 * the poll period is placed by the downtime the final answer reports. The HTML report plots it;
 * the JSON report lists it.
 */
public final class MigrationTimeline {
  /** One answer. Times are milliseconds since the first answer. */
  public record Sample(
      long timeMs,
      String status,
      long transferredBytes,
      long remainingBytes,
      long totalBytes,
      double transferRateBytesPerSec,
      long dirtyRateBytesPerSec,
      long pass) {}

  /** Where something began: a status ({@code kind} "phase") or a pass ({@code kind} "pass"). */
  public record Marker(long timeMs, String kind, String label) {}

  private final LongSupplier nanoClock;
  private final List<Sample> samples = new ArrayList<>();
  private final List<Marker> markers = new ArrayList<>();
  private long firstNs = -1;
  private String lastStatus;
  private long lastPass = -1;

  public MigrationTimeline() {
    this(System::nanoTime);
  }

  /** With a clock of its own (tests). */
  public MigrationTimeline(LongSupplier nanoClock) {
    this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock");
  }

  /** Adds an answer (answers without a status or RAM figures only mark their phase). */
  public synchronized void add(MigrationInfo info) {
    if (info.status() == null) {
      return;
    }
    long now = nanoClock.getAsLong();
    if (firstNs < 0) {
      firstNs = now;
    }
    long t = (now - firstNs) / 1_000_000;
    String status = info.status().qapiName();
    if (!status.equals(lastStatus)) {
      if (status.equals("completed") && info.downtimeMs() != null
          && markers.stream().noneMatch(m -> m.label().equals("device"))) {
        // the switch-over was shorter than the poll period: place it by the downtime the answer reports
        long prev = samples.isEmpty() ? 0 : samples.getLast().timeMs();
        markers.add(new Marker(Math.max(prev, t - info.downtimeMs()), "phase", "device"));
      }
      markers.add(new Marker(t, "phase", status));
      lastStatus = status;
    }
    MigrationStats r = info.ram();
    if (r == null) {
      return;
    }
    if (r.dirtySyncCount() != lastPass && r.dirtySyncCount() > 0) {
      if (lastPass >= 0) {
        markers.add(new Marker(t, "pass", "pass " + r.dirtySyncCount()));
      }
      lastPass = r.dirtySyncCount();
    }
    double rate = 0;
    if (!samples.isEmpty()) {
      Sample prev = samples.getLast();
      long dt = t - prev.timeMs();
      rate = dt > 0 ? Math.max(0, r.transferredBytes() - prev.transferredBytes()) * 1000.0 / dt : prev.transferRateBytesPerSec();
    }
    samples.add(new Sample(t, status, r.transferredBytes(), r.remainingBytes(), r.totalBytes(), rate,
        r.dirtyPagesRate() * Math.max(1, r.pageSizeBytes()), r.dirtySyncCount()));
  }

  public synchronized List<Sample> samples() {
    return List.copyOf(samples);
  }

  public synchronized List<Marker> markers() {
    return List.copyOf(markers);
  }

  /** The samples as a JSON array (units in the key names). */
  public synchronized ArrayNode samplesJson() {
    ArrayNode a = JsonNodeFactory.instance.arrayNode();
    for (Sample s : samples) {
      a.addObject()
          .put("time-ms", s.timeMs())
          .put("status", s.status())
          .put("transferred-bytes", s.transferredBytes())
          .put("remaining-bytes", s.remainingBytes())
          .put("transfer-rate-bytes-per-sec", Math.round(s.transferRateBytesPerSec()))
          .put("dirty-rate-bytes-per-sec", s.dirtyRateBytesPerSec())
          .put("pass", s.pass());
    }
    return a;
  }

  /** The markers as a JSON array. */
  public synchronized ArrayNode markersJson() {
    ArrayNode a = JsonNodeFactory.instance.arrayNode();
    for (Marker m : markers) {
      a.addObject().put("time-ms", m.timeMs()).put("kind", m.kind()).put("label", m.label());
    }
    return a;
  }
}
