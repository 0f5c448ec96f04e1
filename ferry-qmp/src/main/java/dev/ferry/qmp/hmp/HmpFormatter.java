package dev.ferry.qmp.hmp;

import dev.ferry.qmp.Sizes;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.machine.RunState;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.qapi.StressCheckInfo;
import dev.ferry.qmp.qapi.XbzrleCacheStats;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/**
 * Formats QMP answers as QEMU 7.2's HMP prints them ({@code info status}, {@code info migrate},
 * {@code info migrate_capabilities}, {@code info migrate_parameters}, {@code info snapshots}).
 * Lines end with {@code \n}; the monitor turns them into {@code \r\n} where QEMU does.
 */
public final class HmpFormatter {
  /** The order and selection of QEMU 7.2's {@code info migrate_parameters}. */
  static final List<MigrationParameter> HMP_PARAMETER_ORDER =
      List.of(
          MigrationParameter.ANNOUNCE_INITIAL,
          MigrationParameter.ANNOUNCE_MAX,
          MigrationParameter.ANNOUNCE_ROUNDS,
          MigrationParameter.ANNOUNCE_STEP,
          MigrationParameter.COMPRESS_LEVEL,
          MigrationParameter.COMPRESS_THREADS,
          MigrationParameter.COMPRESS_WAIT_THREAD,
          MigrationParameter.DECOMPRESS_THREADS,
          MigrationParameter.THROTTLE_TRIGGER_THRESHOLD,
          MigrationParameter.CPU_THROTTLE_INITIAL,
          MigrationParameter.CPU_THROTTLE_INCREMENT,
          MigrationParameter.CPU_THROTTLE_TAILSLOW,
          MigrationParameter.MAX_CPU_THROTTLE,
          MigrationParameter.TLS_CREDS,
          MigrationParameter.TLS_HOSTNAME,
          MigrationParameter.MAX_BANDWIDTH,
          MigrationParameter.DOWNTIME_LIMIT,
          MigrationParameter.X_CHECKPOINT_DELAY,
          MigrationParameter.BLOCK_INCREMENTAL,
          MigrationParameter.MULTIFD_CHANNELS,
          MigrationParameter.MULTIFD_COMPRESSION,
          MigrationParameter.XBZRLE_CACHE_SIZE,
          MigrationParameter.MAX_POSTCOPY_BANDWIDTH,
          MigrationParameter.TLS_AUTHZ);

  private static final DateTimeFormatter DATE =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);

  private HmpFormatter() {}

  /** {@code VM status: running}, {@code VM status: paused (postmigrate)}. */
  public static String infoStatus(StatusInfo s) {
    StringBuilder sb = new StringBuilder("VM status: ");
    sb.append(s.running() ? "running" : "paused");
    if (s.singlestep()) {
      sb.append(" (single step mode)");
    }
    if (!s.running() && s.status() != RunState.PAUSED) {
      sb.append(" (").append(s.status().qapiName()).append(')');
    }
    return sb.append('\n').toString();
  }

  /** {@code info migrate}: the global settings Ferry always uses, then the statistics. */
  public static String infoMigrate(MigrationInfo info) {
    return infoMigrate(info, null);
  }

  /** {@code info migrate}; {@code disk} is query-migrate's {@code disk} member (block migration) or null. */
  public static String infoMigrate(MigrationInfo info, com.fasterxml.jackson.databind.JsonNode disk) {
    StringBuilder sb = new StringBuilder();
    sb.append("globals:\n");
    sb.append("store-global-state: on\n");
    sb.append("only-migratable: off\n");
    sb.append("send-configuration: on\n");
    sb.append("send-section-footer: on\n");
    sb.append("decompress-error-check: on\n");
    sb.append("clear-bitmap-shift: 18\n");
    if (info.status() != null) {
      sb.append("Migration status: ").append(info.status().qapiName());
      if (info.status() == MigrationStatus.FAILED && info.errorDesc() != null) {
        sb.append(" (").append(info.errorDesc()).append(')');
      }
      sb.append('\n');
      sb.append("total time: ").append(orZero(info.totalTimeMs())).append(" ms\n");
      if (info.expectedDowntimeMs() != null) {
        sb.append("expected downtime: ").append(info.expectedDowntimeMs()).append(" ms\n");
      }
      if (info.downtimeMs() != null) {
        sb.append("downtime: ").append(info.downtimeMs()).append(" ms\n");
      }
      if (info.setupTimeMs() != null) {
        sb.append("setup: ").append(info.setupTimeMs()).append(" ms\n");
      }
    }
    if (info.socketAddress() != null) {
      sb.append("socket address: [\n");
      for (String a : info.socketAddress()) {
        sb.append('\t').append(a).append('\n');
      }
      sb.append("]\n");
    }
    MigrationStats r = info.ram();
    if (r != null) {
      sb.append("transferred ram: ").append(r.transferredBytes() >> 10).append(" kbytes\n");
      sb.append(String.format(Locale.ROOT, "throughput: %.2f mbps\n", r.mbps()));
      sb.append("remaining ram: ").append(r.remainingBytes() >> 10).append(" kbytes\n");
      sb.append("total ram: ").append(r.totalBytes() >> 10).append(" kbytes\n");
      sb.append("duplicate: ").append(r.duplicatePages()).append(" pages\n");
      sb.append("skipped: ").append(r.skippedPages()).append(" pages\n");
      sb.append("normal: ").append(r.normalPages()).append(" pages\n");
      sb.append("normal bytes: ").append(r.normalBytes() >> 10).append(" kbytes\n");
      sb.append("dirty sync count: ").append(r.dirtySyncCount()).append('\n');
      sb.append("page size: ").append(r.pageSizeBytes() >> 10).append(" kbytes\n");
      sb.append("multifd bytes: ").append(r.multifdBytes() >> 10).append(" kbytes\n");
      sb.append("pages-per-second: ").append(r.pagesPerSecond()).append('\n');
      if (r.dirtyPagesRate() != 0) {
        sb.append("dirty pages rate: ").append(r.dirtyPagesRate()).append(" pages\n");
      }
      if (r.postcopyRequests() != 0) {
        sb.append("postcopy request count: ").append(r.postcopyRequests()).append('\n');
      }
      if (r.precopyBytes() != 0) {
        sb.append("precopy ram: ").append(r.precopyBytes() >> 10).append(" kbytes\n");
      }
      if (r.downtimeBytes() != 0) {
        sb.append("downtime ram: ").append(r.downtimeBytes() >> 10).append(" kbytes\n");
      }
      if (r.postcopyBytes() != 0) {
        sb.append("postcopy ram: ").append(r.postcopyBytes() >> 10).append(" kbytes\n");
      }
      if (r.dirtySyncMissedZeroCopy() != 0) {
        sb.append("Zero-copy-send fallbacks happened: ")
            .append(r.dirtySyncMissedZeroCopy())
            .append(" times\n");
      }
    }
    if (disk != null) {
      sb.append("transferred disk: ").append(disk.path("transferred").asLong() >> 10).append(" kbytes\n");
      sb.append("remaining disk: ").append(disk.path("remaining").asLong() >> 10).append(" kbytes\n");
      sb.append("total disk: ").append(disk.path("total").asLong() >> 10).append(" kbytes\n");
    }
    XbzrleCacheStats x = info.xbzrleCache();
    if (x != null) {
      sb.append("cache size: ").append(x.cacheSizeBytes()).append(" bytes\n");
      sb.append("xbzrle transferred: ").append(x.bytes() >> 10).append(" kbytes\n");
      sb.append("xbzrle pages: ").append(x.pages()).append(" pages\n");
      sb.append("xbzrle cache miss: ").append(x.cacheMiss()).append('\n');
      sb.append(String.format(Locale.ROOT, "xbzrle cache miss rate: %.2f\n", x.cacheMissRate()));
      sb.append(String.format(Locale.ROOT, "xbzrle encoding rate: %.2f\n", x.encodingRate()));
      sb.append("xbzrle overflow: ").append(x.overflow()).append('\n');
    }
    if (info.cpuThrottlePercentage() != null) {
      sb.append("cpu throttle percentage: ").append(info.cpuThrottlePercentage()).append('\n');
    }
    dev.ferry.qmp.qapi.ConvergenceInfo c = info.convergence();
    if (c != null && c.reason() != null) {
      sb.append("convergence (ferry): ").append(c.reason()).append('\n');
    }
    if (c != null && c.guardExpectedDowntimeMs() >= 0) {
      sb.append("downtime guard (ferry): ").append(c.guardRefused() ? "refused" : "passed").append(", expected ")
          .append(c.guardExpectedDowntimeMs()).append(" ms, ").append(c.downtimeGuardRefusals()).append(" refusals\n");
    }
    return sb.toString();
  }

  private static long orZero(Long v) {
    return v == null ? 0 : v;
  }

  /** {@code xbzrle: off}, one line per capability. */
  public static String infoMigrateCapabilities(List<MigrationCapabilityStatus> caps) {
    StringBuilder sb = new StringBuilder();
    for (MigrationCapabilityStatus c : caps) {
      sb.append(c.capability().qapiName()).append(": ").append(c.state() ? "on" : "off");
      sb.append('\n');
    }
    return sb.toString();
  }

  /**
   * {@code info migrate_parameters} in QEMU 7.2's order and units; parameters the engine does not
   * report are left out.
   */
  public static String infoMigrateParameters(MigrationParameters p) {
    StringBuilder sb = new StringBuilder();
    for (MigrationParameter param : HMP_PARAMETER_ORDER) {
      if (!p.has(param)) {
        continue;
      }
      sb.append(param.wireName()).append(": ");
      Object v = p.get(param);
      switch (param.kind()) {
        case BOOL -> sb.append((Boolean) v ? "on" : "off");
        case STR -> sb.append('\'').append(v).append('\'');
        default -> sb.append(v);
      }
      sb.append(param.hmpUnit()).append('\n');
    }
    if (p.has(MigrationParameter.BLOCK_BITMAP_MAPPING)) {
      sb.append(MigrationParameter.BLOCK_BITMAP_MAPPING.wireName()).append(":\n");
      for (var node : (com.fasterxml.jackson.databind.JsonNode) p.get(
          MigrationParameter.BLOCK_BITMAP_MAPPING)) {
        sb.append("  '")
            .append(node.path("node-name").asText())
            .append("' -> '")
            .append(node.path("alias").asText())
            .append("'\n");
        for (var bm : node.path("bitmaps")) {
          sb.append("    '")
              .append(bm.path("name").asText())
              .append("' -> '")
              .append(bm.path("alias").asText())
              .append("'\n");
        }
      }
    }
    return sb.toString();
  }

  /** {@code info snapshots} with dates in {@code zone} (QEMU uses the host's local time). */
  public static String infoSnapshots(List<SnapshotInfo> snapshots, ZoneId zone) {
    if (snapshots.isEmpty()) {
      return "There is no snapshot available.\n";
    }
    StringBuilder sb = new StringBuilder("List of snapshots present on all disks:\n");
    sb.append(
        String.format(
            Locale.ROOT,
            "%-10s%-17s%8s%20s%13s%11s",
            "ID",
            "TAG",
            "VM SIZE",
            "DATE",
            "VM CLOCK",
            "ICOUNT"));
    sb.append('\n');
    for (SnapshotInfo s : snapshots) {
      String date = DATE.format(Instant.ofEpochSecond(s.dateSec()).atZone(zone));
      long secs = s.vmClockSec() + s.vmClockNsec() / 1_000_000_000L;
      long millis = (s.vmClockNsec() / 1_000_000L) % 1000;
      String clock =
          String.format(
              Locale.ROOT, "%02d:%02d:%02d.%03d", secs / 3600, (secs / 60) % 60, secs % 60, millis);
      sb.append(
          String.format(
              Locale.ROOT,
              "%-9s %-16s %8s%20s%13s%11s",
              "--",
              s.name(),
              Sizes.human(s.vmStateSizeBytes()),
              date,
              clock,
              s.icount() == null ? "" : s.icount().toString()));
      sb.append('\n');
    }
    return sb.toString();
  }

  /** Ferry's {@code info stress}: the verdict, then the first bad pages, one per line. */
  public static String infoStress(StressCheckInfo s) {
    StringBuilder sb = new StringBuilder();
    sb.append("stress check: ").append(s.passed() ? "passed" : "FAILED");
    sb.append(", ").append(s.pagesChecked()).append(" pages checked, ");
    sb.append(s.badPages()).append(" bad\n");
    for (String b : s.firstBad()) {
      sb.append("  bad page ").append(b).append('\n');
    }
    return sb.toString();
  }

  /** {@code info version}: QEMU prints {@code MAJOR.MINOR.MICRO} and the package. */
  public static String infoVersion(dev.ferry.qmp.qapi.VersionInfo v) {
    return v.major() + "." + v.minor() + "." + v.micro() + (v.packageName().isEmpty() ? "" : " (" + v.packageName() + ")") + "\n";
  }

  /** {@code info cpus}: one line per vCPU, the first marked current, as QEMU's. */
  public static String infoCpus(List<dev.ferry.qmp.qapi.CpuInfoFast> cpus) {
    StringBuilder sb = new StringBuilder();
    for (var c : cpus) {
      sb.append(c.cpuIndex() == 0 ? "* " : "  ").append("CPU #").append(c.cpuIndex())
          .append(": thread_id=").append(c.threadId()).append('\n');
    }
    return sb.toString();
  }

  /** {@code info registers}: the CPU device's fields, 64-bit hex, four to a line as QEMU's dumps. */
  public static String infoRegisters(dev.ferry.qmp.qapi.CpuRegisters r) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "CPU#%d program=%s%n", r.cpuIndex(), r.program()));
    sb.append(String.format(Locale.ROOT, "PC =%016x STEPS=%016x FLAGS=%08x%n", r.pc(), r.steps(), r.flags()));
    registerRows(sb, "R", r.regs());
    registerRows(sb, "X", r.xregs());
    return sb.toString().replace("\r\n", "\n");
  }

  private static void registerRows(StringBuilder sb, String prefix, List<Long> values) {
    for (int i = 0; i < values.size(); i++) {
      sb.append(String.format(Locale.ROOT, "%s%02d=%016x", prefix, i, values.get(i)));
      sb.append(i % 4 == 3 || i == values.size() - 1 ? "\n" : " ");
    }
  }

  /** {@code info dirty_rate}, as QEMU 7.2 prints it for the page-sampling mode. */
  public static String infoDirtyRate(dev.ferry.qmp.qapi.DirtyRateInfo d) {
    StringBuilder sb = new StringBuilder();
    sb.append("Status: ").append(d.status()).append('\n');
    sb.append("Start Time: ").append(d.startTimeS()).append(" (ms)\n");
    sb.append("Sample Pages: ").append(d.samplePages()).append(" (per GB)\n");
    sb.append("Period: ").append(d.calcTimeS()).append(" (sec)\n");
    sb.append("Mode: ").append(d.mode()).append('\n');
    sb.append("Dirty rate: ");
    if (d.dirtyRateMiBPerSec() != null) {
      sb.append(d.dirtyRateMiBPerSec()).append(" (MB/s)\n");
    } else {
      sb.append("(not ready)\n");
    }
    return sb.toString();
  }

  /**
   * Ferry's {@code info digest}: the whole-machine line, then one line per RAM block and device
   * section; with {@code pages}, each block's page digests, eight a line, after the block.
   */
  public static String infoDigest(MemoryDigest d, boolean pages) {
    StringBuilder sb = new StringBuilder();
    sb.append("digest (").append(d.algorithm()).append("): ram ").append(d.ram());
    sb.append(", devices ").append(d.devices()).append(", ").append(d.bytes()).append(" bytes\n");
    for (MemoryDigest.Block b : d.blocks()) {
      sb.append("  block ").append(b.name()).append(": ").append(b.length()).append(" bytes, ").append(b.digest()).append('\n');
      int[] p = pages ? d.pageDigests(b.name()) : null;
      if (p != null) {
        for (int i = 0; i < p.length; i += 8) {
          sb.append(String.format("    0x%x:", (long) i * 4096));
          for (int j = i; j < Math.min(p.length, i + 8); j++) {
            sb.append(String.format(" %08x", p[j]));
          }
          sb.append('\n');
        }
      }
    }
    for (MemoryDigest.Section s : d.sections()) {
      sb.append("  section ").append(s.idstr()).append('.').append(s.instanceId()).append(": ");
      sb.append(s.length()).append(" bytes, ").append(s.digest()).append('\n');
    }
    return sb.toString();
  }
}
