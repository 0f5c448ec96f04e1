package dev.ferry.migration;

import dev.ferry.stream.MultifdCompression;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The migration parameters Ferry honours, with QAPI's names (qapi/migration.json
 * MigrationParameters). Immutable; {@link #apply} validates a set of changes (names, types, ranges)
 * as QEMU's options.c does and returns the new parameters.
 *
 * <p>Defaults follow QEMU except {@code max-bandwidth}: QEMU's 128 MiB/s would make a loopback
 * migration of a few GiB take tens of seconds, so Ferry defaults to {@value
 * #DEFAULT_MAX_BANDWIDTH_BYTES_PER_SEC} bytes/s (16 GiB/s): above loopback TCP and 100 GbE speeds,
 * i.e. migrations run at transport speed unless the user sets a limit.
 *
 * @param maxBandwidthBytesPerSec rate limit of the precopy stream; 0 means unlimited
 * @param downtimeLimitMs the longest the machine may be stopped for the final part
 * @param xbzrleCacheSizeBytes size of the XBZRLE page cache (a power-of-two number of pages)
 * @param maxPostcopyBandwidthBytesPerSec rate limit of background pages in postcopy; 0 = unlimited
 * @param cpuThrottleInitialPercent auto-converge: first throttle step
 * @param cpuThrottleIncrementPercent auto-converge: each further step
 * @param cpuThrottleTailslow auto-converge: smaller steps near the target
 * @param maxCpuThrottlePercent auto-converge: the throttle never goes above this
 * @param throttleTriggerThresholdPercent auto-converge: throttle when the guest dirties more than
 *     this percent of what was sent in a sync period
 * @param tlsCreds id of the {@code tls-creds-x509} object the migration runs TLS with (endpoint
 *     client on the source, server on the destination); empty: no TLS
 * @param tlsHostname the name the destination's certificate must carry; empty: the host of the URI
 * @param tlsAuthz on the destination, id of the {@code authz-list}/{@code authz-simple} object that
 *     says which client certificates may connect; empty: any certificate from the CA
 * @param precopyMaxPasses Ferry ({@code ferry-precopy-max-passes}): the most dirty syncs precopy may
 *     run before it switches to postcopy (when allowed) or fails; 0 = no limit
 * @param precopyMaxBytes Ferry ({@code ferry-precopy-max-bytes}): the most stream bytes precopy may
 *     send; 0 = none, except {@value SwitchOverPolicy#FILE_BUDGET_RAM_MULTIPLE} × RAM for a {@code
 *     file:} migration
 * @param precopyMaxTimeMs Ferry ({@code ferry-precopy-max-time}): the longest precopy may run, in
 *     ms; 0 = no limit
 * @param blockIncremental block migration skips what the destination's base already holds (see
 *     {@link dev.ferry.block.BlockLiveState}); with the {@code block} capability
 * @param multifdChannels with the {@code multifd} capability: the extra connections pages travel
 *     on (1…255, default 2); both sides must use the same number
 * @param multifdCompression with {@code multifd}: how each channel compresses its pages
 * @param multifdZlibLevel {@code multifd-zlib-level} (0…9, default 1). QEMU 7.2 accepts this and
 *     {@code multifd-zstd-level} in migrate-set-parameters but drops them (only {@code -global}
 *     sets them); Ferry checks and applies them, as later QEMUs do
 * @param multifdZstdLevel {@code multifd-zstd-level} (0…20, default 1)
 */
public record MigrationParameters(
    long maxBandwidthBytesPerSec,
    long downtimeLimitMs,
    long xbzrleCacheSizeBytes,
    long maxPostcopyBandwidthBytesPerSec,
    int cpuThrottleInitialPercent,
    int cpuThrottleIncrementPercent,
    boolean cpuThrottleTailslow,
    int maxCpuThrottlePercent,
    int throttleTriggerThresholdPercent,
    String tlsCreds,
    String tlsHostname,
    String tlsAuthz,
    long precopyMaxPasses,
    long precopyMaxBytes,
    long precopyMaxTimeMs,
    boolean blockIncremental,
    int multifdChannels,
    MultifdCompression multifdCompression,
    int multifdZlibLevel,
    int multifdZstdLevel) {

  public static final long DEFAULT_MAX_BANDWIDTH_BYTES_PER_SEC = 16L << 30;
  /** QEMU's MAX_MIGRATE_DOWNTIME: 2000 seconds. */
  public static final long MAX_DOWNTIME_LIMIT_MS = 2_000_000;

  public static final MigrationParameters DEFAULT =
      new MigrationParameters(
          DEFAULT_MAX_BANDWIDTH_BYTES_PER_SEC, 300, 64L << 20, 0, 20, 10, false, 99, 50, "", "", "", 0, 0, 0, false,
          2, MultifdCompression.NONE, 1, 1);

  /** QAPI names of the parameters, in query order. */
  public static final String[] NAMES = {
    "max-bandwidth",
    "downtime-limit",
    "xbzrle-cache-size",
    "max-postcopy-bandwidth",
    "cpu-throttle-initial",
    "cpu-throttle-increment",
    "cpu-throttle-tailslow",
    "max-cpu-throttle",
    "throttle-trigger-threshold",
    "tls-creds",
    "tls-hostname",
    "tls-authz",
    "ferry-precopy-max-passes",
    "ferry-precopy-max-bytes",
    "ferry-precopy-max-time",
    "block-incremental",
    "multifd-channels",
    "multifd-compression",
    "multifd-zlib-level",
    "multifd-zstd-level"
  };

  /** Whether the migration runs inside TLS ({@code tls-creds} set). */
  public boolean tls() {
    return !tlsCreds.isEmpty();
  }

  /** The parameters as QAPI's query-migrate-parameters returns them. */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("max-bandwidth", maxBandwidthBytesPerSec);
    m.put("downtime-limit", downtimeLimitMs);
    m.put("xbzrle-cache-size", xbzrleCacheSizeBytes);
    m.put("max-postcopy-bandwidth", maxPostcopyBandwidthBytesPerSec);
    m.put("cpu-throttle-initial", cpuThrottleInitialPercent);
    m.put("cpu-throttle-increment", cpuThrottleIncrementPercent);
    m.put("cpu-throttle-tailslow", cpuThrottleTailslow);
    m.put("max-cpu-throttle", maxCpuThrottlePercent);
    m.put("throttle-trigger-threshold", throttleTriggerThresholdPercent);
    m.put("tls-creds", tlsCreds);
    m.put("tls-hostname", tlsHostname);
    m.put("tls-authz", tlsAuthz);
    m.put("ferry-precopy-max-passes", precopyMaxPasses);
    m.put("ferry-precopy-max-bytes", precopyMaxBytes);
    m.put("ferry-precopy-max-time", precopyMaxTimeMs);
    m.put("block-incremental", blockIncremental);
    m.put("multifd-channels", multifdChannels);
    m.put("multifd-compression", multifdCompression.qmpName());
    m.put("multifd-zlib-level", multifdZlibLevel);
    m.put("multifd-zstd-level", multifdZstdLevel);
    return m;
  }

  /**
   * These parameters with {@code changes} applied (QAPI names to Long/Integer/Boolean values).
   *
   * @throws IllegalArgumentException naming the parameter, for an unknown name, a wrong type or a
   *     value out of range
   */
  public MigrationParameters apply(Map<String, ?> changes) {
    long maxBw = maxBandwidthBytesPerSec;
    long downtime = downtimeLimitMs;
    long xbzrle = xbzrleCacheSizeBytes;
    long maxPostcopyBw = maxPostcopyBandwidthBytesPerSec;
    int initial = cpuThrottleInitialPercent;
    int increment = cpuThrottleIncrementPercent;
    boolean tailslow = cpuThrottleTailslow;
    int maxThrottle = maxCpuThrottlePercent;
    int trigger = throttleTriggerThresholdPercent;
    String creds = tlsCreds;
    String hostname = tlsHostname;
    String authz = tlsAuthz;
    long maxPasses = precopyMaxPasses;
    long maxBytes = precopyMaxBytes;
    long maxTime = precopyMaxTimeMs;
    boolean blockInc = blockIncremental;
    int channels = multifdChannels;
    MultifdCompression compression = multifdCompression;
    int zlibLevel = multifdZlibLevel;
    int zstdLevel = multifdZstdLevel;
    for (Map.Entry<String, ?> e : changes.entrySet()) {
      String name = e.getKey();
      Object v = e.getValue();
      switch (name) {
        case "max-bandwidth" -> maxBw = range(name, number(name, v), 0, Long.MAX_VALUE);
        case "downtime-limit" -> downtime = range(name, number(name, v), 0, MAX_DOWNTIME_LIMIT_MS);
        case "xbzrle-cache-size" -> {
          xbzrle = range(name, number(name, v), 4096, 1L << 40);
        }
        case "max-postcopy-bandwidth" -> maxPostcopyBw = range(name, number(name, v), 0, Long.MAX_VALUE);
        case "cpu-throttle-initial" -> initial = (int) range(name, number(name, v), 1, 99);
        case "cpu-throttle-increment" -> increment = (int) range(name, number(name, v), 1, 99);
        case "cpu-throttle-tailslow" -> {
          if (!(v instanceof Boolean b)) {
            throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: boolean");
          }
          tailslow = b;
        }
        case "max-cpu-throttle" -> maxThrottle = (int) range(name, number(name, v), 1, 99);
        case "throttle-trigger-threshold" -> trigger = (int) range(name, number(name, v), 1, 100);
        case "tls-creds" -> creds = string(name, v);
        case "tls-hostname" -> hostname = string(name, v);
        case "tls-authz" -> authz = string(name, v);
        case "ferry-precopy-max-passes" -> maxPasses = range(name, number(name, v), 0, Integer.MAX_VALUE);
        case "ferry-precopy-max-bytes" -> maxBytes = range(name, number(name, v), 0, Long.MAX_VALUE);
        case "ferry-precopy-max-time" -> maxTime = range(name, number(name, v), 0, Long.MAX_VALUE / 1_000_000);
        case "block-incremental" -> {
          if (!(v instanceof Boolean b)) {
            throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: boolean");
          }
          blockInc = b;
        }
        // QEMU 7.2's migrate_params_check texts (with its underscores)
        case "multifd-channels" -> channels = (int) qemuRange("multifd_channels", number(name, v), 1, 255);
        case "multifd-compression" -> {
          if (!(v instanceof String s)) {
            throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: string");
          }
          compression = MultifdCompression.fromQmpName(s);
        }
        case "multifd-zlib-level" -> zlibLevel = (int) qemuRange("multifd_zlib_level", number(name, v), 0, 9);
        case "multifd-zstd-level" -> zstdLevel = (int) qemuRange("multifd_zstd_level", number(name, v), 0, 20);
        default -> throw new IllegalArgumentException("Parameter '" + name + "' is unexpected or not supported by Ferry");
      }
    }
    return new MigrationParameters(
        maxBw, downtime, xbzrle, maxPostcopyBw, initial, increment, tailslow, maxThrottle, trigger, creds, hostname, authz,
        maxPasses, maxBytes, maxTime, blockInc, channels, compression, zlibLevel, zstdLevel);
  }

  /** The compression level of {@link #multifdCompression} (0 for none). */
  public int multifdLevel() {
    return switch (multifdCompression) {
      case NONE -> 0;
      case ZLIB -> multifdZlibLevel;
      case ZSTD -> multifdZstdLevel;
    };
  }

  /** A StrOrNull parameter: null (JSON null) resets it to empty, as in QEMU. */
  private static String string(String name, Object v) {
    if (v == null) {
      return "";
    }
    if (!(v instanceof String s)) {
      throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: string");
    }
    return s;
  }

  private static long number(String name, Object v) {
    if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
      return ((Number) v).longValue();
    }
    if (v instanceof java.math.BigInteger b && b.bitLength() < 64) {
      return b.longValue();
    }
    throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: integer");
  }

  /** QEMU's QERR_INVALID_PARAMETER_VALUE text: {@code Parameter 'x' expects a value between a and b}. */
  private static long qemuRange(String qemuName, long v, long min, long max) {
    if (v < min || v > max) {
      throw new IllegalArgumentException(
          "Parameter '" + qemuName + "' expects a value between " + min + " and " + max);
    }
    return v;
  }

  private static long range(String name, long v, long min, long max) {
    if (v < min || v > max) {
      throw new IllegalArgumentException(
          "Parameter '" + name + "' expects a value between " + min + " and " + max + ", got " + v);
    }
    return v;
  }
}
