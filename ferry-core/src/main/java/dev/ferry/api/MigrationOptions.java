package dev.ferry.api;

import java.time.Duration;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * How one migration runs: its capabilities and parameters (QEMU's {@code migrate-set-capabilities}
 * and {@code migrate-set-parameters}, as types), and for an incoming one whether the machine runs
 * afterwards. Immutable; made by {@link #builder()}. Parameters not set keep QEMU's defaults
 * (except an unlimited bandwidth); values are checked against QEMU's ranges when the migration
 * starts, with QEMU's words.
 */
public final class MigrationOptions {
  /** The capabilities Ferry implements, by their QAPI names. */
  public enum Capability {
    /** Send pages that changed little as XBZRLE deltas against a cache of sent pages. */
    XBZRLE("xbzrle"),
    /** Emit status events ({@link MigrationEvent.StatusChanged} always fires; QMP's need this). */
    EVENTS("events"),
    /** Allow switching to postcopy ({@link Migration#startPostcopy()}); both sides set it. */
    POSTCOPY_RAM("postcopy-ram"),
    /** The destination answers on a return path (the source learns it loaded everything). */
    RETURN_PATH("return-path"),
    /** Measure how long destination vCPUs wait for postcopy pages. */
    POSTCOPY_BLOCKTIME("postcopy-blocktime"),
    /** Move the drives' content too (QEMU 7.2's block migration); off: shared storage. */
    BLOCK("block"),
    /** With {@link #BLOCK}: all-zero chunks go without payload. */
    ZERO_BLOCKS("zero-blocks");

    private final String qapiName;

    Capability(String qapiName) {
      this.qapiName = qapiName;
    }

    /** The QAPI name, e.g. {@code postcopy-ram}. */
    public String qapiName() {
      return qapiName;
    }
  }

  private final Set<Capability> capabilities;
  private final Map<String, Object> parameters;
  private final boolean autostart;

  private MigrationOptions(Builder b) {
    this.capabilities = Collections.unmodifiableSet(EnumSet.copyOf(b.capabilities));
    this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(b.parameters));
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

  /** The parameters set, by QAPI name (e.g. {@code downtime-limit} in ms). */
  public Map<String, Object> parameters() {
    return parameters;
  }

  /** Incoming: whether the machine runs after the load when its source ran (default true). */
  public boolean autostart() {
    return autostart;
  }

  @Override
  public String toString() {
    return "MigrationOptions[" + capabilities + ", " + parameters + (autostart ? "" : ", paused") + "]";
  }

  /** Builds {@link MigrationOptions}. */
  public static final class Builder {
    private final EnumSet<Capability> capabilities = EnumSet.noneOf(Capability.class);
    private final Map<String, Object> parameters = new LinkedHashMap<>();
    private boolean autostart = true;

    private Builder() {}

    /** Turns capabilities on. */
    public Builder enable(Capability... caps) {
      for (Capability c : caps) {
        capabilities.add(Objects.requireNonNull(c, "capability"));
      }
      return this;
    }

    /** {@code max-bandwidth}: the precopy stream's rate limit; 0 means unlimited. */
    public Builder maxBandwidthBytesPerSec(long bytesPerSec) {
      parameters.put("max-bandwidth", bytesPerSec);
      return this;
    }

    /** {@code downtime-limit}: the longest the guest may stop for the switch-over (ms precision). */
    public Builder downtimeLimit(Duration limit) {
      parameters.put("downtime-limit", limit.toMillis());
      return this;
    }

    /** {@code xbzrle-cache-size}: bytes of the XBZRLE page cache. */
    public Builder xbzrleCacheSizeBytes(long bytes) {
      parameters.put("xbzrle-cache-size", bytes);
      return this;
    }

    /**
     * {@code block-incremental}: with {@link Capability#BLOCK}, the bulk phase skips the chunks the
     * destination's base already holds (see {@link dev.ferry.block.BlockLiveState}).
     */
    public Builder blockIncremental(boolean on) {
      parameters.put("block-incremental", on);
      return this;
    }

    /** {@code max-postcopy-bandwidth}: rate limit of background pages in postcopy; 0 = unlimited. */
    public Builder maxPostcopyBandwidthBytesPerSec(long bytesPerSec) {
      parameters.put("max-postcopy-bandwidth", bytesPerSec);
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
