package dev.ferry.qmp.qapi;

import java.util.List;

/**
 * Every migration parameter of QEMU 7.2 (QAPI {@code MigrationParameter}), with its QAPI type and the
 * unit HMP prints after it. The backend says which ones the engine honours: it reports those in
 * {@code query-migrate-parameters} and rejects setting the others.
 */
public enum MigrationParameter {
  ANNOUNCE_INITIAL("announce-initial", Kind.SIZE, " ms"),
  ANNOUNCE_MAX("announce-max", Kind.SIZE, " ms"),
  ANNOUNCE_ROUNDS("announce-rounds", Kind.SIZE, ""),
  ANNOUNCE_STEP("announce-step", Kind.SIZE, " ms"),
  COMPRESS_LEVEL("compress-level", Kind.UINT8, ""),
  COMPRESS_THREADS("compress-threads", Kind.UINT8, ""),
  COMPRESS_WAIT_THREAD("compress-wait-thread", Kind.BOOL, ""),
  DECOMPRESS_THREADS("decompress-threads", Kind.UINT8, ""),
  THROTTLE_TRIGGER_THRESHOLD("throttle-trigger-threshold", Kind.UINT8, ""),
  CPU_THROTTLE_INITIAL("cpu-throttle-initial", Kind.UINT8, ""),
  CPU_THROTTLE_INCREMENT("cpu-throttle-increment", Kind.UINT8, ""),
  CPU_THROTTLE_TAILSLOW("cpu-throttle-tailslow", Kind.BOOL, ""),
  TLS_CREDS("tls-creds", Kind.STR, ""),
  TLS_HOSTNAME("tls-hostname", Kind.STR, ""),
  TLS_AUTHZ("tls-authz", Kind.STR, ""),
  MAX_BANDWIDTH("max-bandwidth", Kind.SIZE, " bytes/second"),
  DOWNTIME_LIMIT("downtime-limit", Kind.UINT64, " ms"),
  X_CHECKPOINT_DELAY("x-checkpoint-delay", Kind.UINT32, " ms"),
  BLOCK_INCREMENTAL("block-incremental", Kind.BOOL, ""),
  MULTIFD_CHANNELS("multifd-channels", Kind.UINT8, ""),
  XBZRLE_CACHE_SIZE("xbzrle-cache-size", Kind.SIZE, " bytes"),
  MAX_POSTCOPY_BANDWIDTH("max-postcopy-bandwidth", Kind.SIZE, ""),
  MAX_CPU_THROTTLE("max-cpu-throttle", Kind.UINT8, ""),
  MULTIFD_COMPRESSION("multifd-compression", Kind.ENUM, ""),
  MULTIFD_ZLIB_LEVEL("multifd-zlib-level", Kind.UINT8, ""),
  MULTIFD_ZSTD_LEVEL("multifd-zstd-level", Kind.UINT8, ""),
  BLOCK_BITMAP_MAPPING("block-bitmap-mapping", Kind.JSON_ARRAY, ""),
  /** Ferry: the most dirty syncs precopy may run (0: no limit). */
  FERRY_PRECOPY_MAX_PASSES("ferry-precopy-max-passes", Kind.UINT32, ""),
  /** Ferry: the most bytes precopy may send (0: none, 3 x RAM for file:). */
  FERRY_PRECOPY_MAX_BYTES("ferry-precopy-max-bytes", Kind.SIZE, " bytes"),
  /** Ferry: the longest precopy may run (0: no limit). */
  FERRY_PRECOPY_MAX_TIME("ferry-precopy-max-time", Kind.UINT64, " ms");

  /** The QAPI type of a parameter's value, and so the Java type it is held in. */
  public enum Kind {
    /** uint8, held as Long. */
    UINT8(0xffL),
    /** uint32, held as Long. */
    UINT32(0xffff_ffffL),
    /** uint64 (Ferry holds it as a non-negative long), held as Long. */
    UINT64(Long.MAX_VALUE),
    /** QAPI 'size': bytes (or a plain count), held as Long. */
    SIZE(Long.MAX_VALUE),
    /** Held as Boolean. */
    BOOL(0),
    /** Held as String. */
    STR(0),
    /** One of {@link #MULTIFD_COMPRESSION_VALUES}, held as String. */
    ENUM(0),
    /** A JSON array kept as a Jackson node (block-bitmap-mapping). */
    JSON_ARRAY(0);

    private final long max;

    Kind(long max) {
      this.max = max;
    }

    /** Largest value of an integer kind. */
    public long max() {
      return max;
    }

    /** Whether values of this kind are held as Long. */
    public boolean isInteger() {
      return this == UINT8 || this == UINT32 || this == UINT64 || this == SIZE;
    }
  }

  /** The values QAPI {@code MultiFDCompression} allows. */
  public static final List<String> MULTIFD_COMPRESSION_VALUES = List.of("none", "zlib", "zstd");

  private final String wireName;
  private final Kind kind;
  private final String hmpUnit;

  MigrationParameter(String wireName, Kind kind, String hmpUnit) {
    this.wireName = wireName;
    this.kind = kind;
    this.hmpUnit = hmpUnit;
  }

  /** The QAPI name, e.g. {@code max-bandwidth}. */
  public String wireName() {
    return wireName;
  }

  public Kind kind() {
    return kind;
  }

  /** What HMP's {@code info migrate_parameters} prints after the value, e.g. {@code " ms"}. */
  public String hmpUnit() {
    return hmpUnit;
  }

  /** Looks a parameter up by its QAPI name, or returns null when there is none of that name. */
  public static MigrationParameter byWireName(String name) {
    for (MigrationParameter p : values()) {
      if (p.wireName.equals(name)) {
        return p;
      }
    }
    return null;
  }
}
