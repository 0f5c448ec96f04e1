package dev.ferry.api;

import dev.ferry.migration.MigrationParameters;
import java.time.Duration;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * How one migration runs: its capabilities and parameters (QEMU's {@code migrate-set-capabilities}
 * and {@code migrate-set-parameters}, as types), its TLS, and for an incoming one whether the
 * machine runs afterwards. Immutable; made by {@link #builder()}. Parameters not set keep QEMU's
 * defaults (except an unlimited bandwidth); each setter checks its value against QEMU's range at
 * once, with QEMU's words.
 */
public final class MigrationOptions {
  /** The capabilities Ferry implements, by their QAPI names. */
  public enum Capability {
    /** Send pages that changed little as XBZRLE deltas against a cache of sent pages. */
    XBZRLE("xbzrle"),
    /**
     * Slow the guest's vCPUs down (sleep after their steps) while precopy does not converge, in the
     * steps {@link Builder#cpuThrottleInitialPercent} and {@link Builder#cpuThrottleIncrementPercent}
     * up to {@link Builder#maxCpuThrottlePercent}.
     */
    AUTO_CONVERGE("auto-converge"),
    /** Emit status events ({@link MigrationEvent.StatusChanged} always fires; QMP's need this). */
    EVENTS("events"),
    /** Allow switching to postcopy ({@link Migration#startPostcopy()}); both sides set it. */
    POSTCOPY_RAM("postcopy-ram"),
    /** The destination answers on a return path (the source learns it loaded everything). */
    RETURN_PATH("return-path"),
    /**
     * Stop in {@link MigrationStatus#PRE_SWITCHOVER} with the guest paused before the device state
     * goes, until {@link Migration#continueSwitchover()} (QEMU's {@code migrate-continue}).
     */
    PAUSE_BEFORE_SWITCHOVER("pause-before-switchover"),
    /** Measure how long destination vCPUs wait for postcopy pages. */
    POSTCOPY_BLOCKTIME("postcopy-blocktime"),
    /** Move the drives' content too (QEMU 7.2's block migration); off: shared storage. */
    BLOCK("block"),
    /** With {@link #BLOCK}: all-zero chunks go without payload. */
    ZERO_BLOCKS("zero-blocks"),
    /**
     * Ferry: with {@link #POSTCOPY_RAM}, switch to postcopy without being asked once precopy does
     * not converge or used its budget ({@link Builder#precopyMaxPasses}, {@link
     * Builder#precopyMaxBytes}, {@link Builder#precopyMaxTime}).
     */
    FERRY_AUTO_POSTCOPY("ferry-auto-postcopy");

    private final String qapiName;

    Capability(String qapiName) {
      this.qapiName = qapiName;
    }

    /** The QAPI name, e.g. {@code postcopy-ram}. */
    public String qapiName() {
      return qapiName;
    }
  }

  /** The ids under which a machine keeps the TLS objects of its current migration. */
  static final String TLS_CREDS_ID = "ferry-api-tls-creds";

  static final String TLS_AUTHZ_ID = "ferry-api-tls-authz";

  private final Set<Capability> capabilities;
  private final Map<String, Object> parameters;
  private final TlsOptions tls;
  private final boolean autostart;

  private MigrationOptions(Builder b) {
    this.capabilities = Collections.unmodifiableSet(EnumSet.copyOf(b.capabilities));
    this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(b.parameters));
    this.tls = b.tls;
    this.autostart = b.autostart;
  }

  /** A builder with no capability on and every parameter at its default. */
  public static Builder builder() {
    return new Builder();
  }

  /** The capabilities turned on (the others are off for this migration). */
  public Set<Capability> capabilities() {
    return capabilities;
  }

  /** Whether {@code c} is on. */
  public boolean has(Capability c) {
    return capabilities.contains(c);
  }

  /** The TLS of the migration, or empty for a plain one. */
  public Optional<TlsOptions> tls() {
    return Optional.ofNullable(tls);
  }

  /** Incoming: whether the machine runs after the load when its source ran (default true). */
  public boolean autostart() {
    return autostart;
  }

  /**
   * The engine's parameters these options set, by QAPI name, the TLS ones naming the objects {@link
   * FerryMachine} registers under {@link #TLS_CREDS_ID} and {@link #TLS_AUTHZ_ID}.
   */
  Map<String, Object> engineParameters() {
    Map<String, Object> p = new LinkedHashMap<>(parameters);
    p.put("tls-creds", tls == null ? "" : TLS_CREDS_ID);
    p.put("tls-hostname", tls == null ? "" : tls.hostname());
    p.put("tls-authz", tls == null || tls.allowedClients().isEmpty() ? "" : TLS_AUTHZ_ID);
    return p;
  }

  @Override
  public String toString() {
    return "MigrationOptions[" + capabilities + ", " + parameters + (tls == null ? "" : ", " + tls)
        + (autostart ? "" : ", paused") + "]";
  }

  /** Builds {@link MigrationOptions}. */
  public static final class Builder {
    private final EnumSet<Capability> capabilities = EnumSet.noneOf(Capability.class);
    private final Map<String, Object> parameters = new LinkedHashMap<>();
    private TlsOptions tls;
    private boolean autostart = true;

    private Builder() {}

    /** Turns capabilities on. */
    public Builder enable(Capability... caps) {
      for (Capability c : caps) {
        capabilities.add(Objects.requireNonNull(c, "capability"));
      }
      return this;
    }

    /** Sets one engine parameter after the engine's own check of name, type and range. */
    private Builder set(String name, Object value) {
      MigrationParameters.DEFAULT.apply(Map.of(name, value)); // QEMU's words for a bad value
      parameters.put(name, value);
      return this;
    }

    /** {@code max-bandwidth}: the precopy stream's rate limit; 0 means unlimited. */
    public Builder maxBandwidthBytesPerSec(long bytesPerSec) {
      return set("max-bandwidth", bytesPerSec);
    }

    /** {@code downtime-limit}: the longest the guest may stop for the switch-over (ms precision). */
    public Builder downtimeLimit(Duration limit) {
      return set("downtime-limit", limit.toMillis());
    }

    /** {@code xbzrle-cache-size}: bytes of the XBZRLE page cache. */
    public Builder xbzrleCacheSizeBytes(long bytes) {
      return set("xbzrle-cache-size", bytes);
    }

    /**
     * {@code block-incremental}: with {@link Capability#BLOCK}, the bulk phase skips the chunks the
     * destination's base already holds.
     */
    public Builder blockIncremental(boolean on) {
      return set("block-incremental", on);
    }

    /** {@code max-postcopy-bandwidth}: rate limit of background pages in postcopy; 0 = unlimited. */
    public Builder maxPostcopyBandwidthBytesPerSec(long bytesPerSec) {
      return set("max-postcopy-bandwidth", bytesPerSec);
    }

    /** {@code cpu-throttle-initial} (1..99, default 20): auto-converge's first throttle step. */
    public Builder cpuThrottleInitialPercent(int percent) {
      return set("cpu-throttle-initial", percent);
    }

    /** {@code cpu-throttle-increment} (1..99, default 10): auto-converge's further steps. */
    public Builder cpuThrottleIncrementPercent(int percent) {
      return set("cpu-throttle-increment", percent);
    }

    /** {@code cpu-throttle-tailslow}: smaller auto-converge steps near the end (default off). */
    public Builder cpuThrottleTailslow(boolean on) {
      return set("cpu-throttle-tailslow", on);
    }

    /** {@code max-cpu-throttle} (1..99, default 99): auto-converge never throttles above this. */
    public Builder maxCpuThrottlePercent(int percent) {
      return set("max-cpu-throttle", percent);
    }

    /**
     * {@code throttle-trigger-threshold} (1..100, default 50): auto-converge throttles when the guest
     * dirtied more than this percent of what was sent during a sync period.
     */
    public Builder throttleTriggerThresholdPercent(int percent) {
      return set("throttle-trigger-threshold", percent);
    }

    /** {@code ferry-precopy-max-passes}: the most dirty syncs precopy may run; 0 = no limit. */
    public Builder precopyMaxPasses(long passes) {
      return set("ferry-precopy-max-passes", passes);
    }

    /** {@code ferry-precopy-max-bytes}: the most stream bytes precopy may send; 0 = no limit. */
    public Builder precopyMaxBytes(long bytes) {
      return set("ferry-precopy-max-bytes", bytes);
    }

    /** {@code ferry-precopy-max-time}: the longest precopy may run (ms precision); zero = no limit. */
    public Builder precopyMaxTime(Duration time) {
      return set("ferry-precopy-max-time", time.toMillis());
    }

    /**
     * Runs the migration inside TLS ({@code tls-creds}, {@code tls-hostname}, {@code tls-authz});
     * both sides must. Needs a two-way transport ({@code tcp:}, {@code unix:}, {@code fd:}).
     */
    public Builder tls(TlsOptions tls) {
      this.tls = Objects.requireNonNull(tls, "tls");
      return this;
    }

    /**
     * Incoming only: with {@code false} the machine stays paused after the load (QEMU's {@code
     * -S}); default true: it runs if its source ran.
     */
    public Builder autostart(boolean on) {
      this.autostart = on;
      return this;
    }

    /** The options. */
    public MigrationOptions build() {
      return new MigrationOptions(this);
    }
  }
}
