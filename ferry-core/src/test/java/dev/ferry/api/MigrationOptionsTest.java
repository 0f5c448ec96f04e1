package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationParameters;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.junit.jupiter.api.Test;

/**
 * Every capability and parameter the engine has is reachable from {@link MigrationOptions}, with a
 * type: a capability or parameter added to the engine fails here until the API gets its enum
 * constant or builder method (and the builder below calls it).
 */
class MigrationOptionsTest {
  /** Every setter of the builder, each at a value other than the engine's default. */
  static MigrationOptions everything() {
    return MigrationOptions.builder()
        .enable(MigrationOptions.Capability.values())
        .maxBandwidthBytesPerSec(123 << 20)
        .downtimeLimit(Duration.ofMillis(42))
        .xbzrleCacheSizeBytes(8 << 20)
        .blockIncremental(true)
        .maxPostcopyBandwidthBytesPerSec(7 << 20)
        .cpuThrottleInitialPercent(30)
        .cpuThrottleIncrementPercent(15)
        .cpuThrottleTailslow(true)
        .maxCpuThrottlePercent(80)
        .throttleTriggerThresholdPercent(70)
        .precopyMaxPasses(9)
        .precopyMaxBytes(1L << 30)
        .precopyMaxTime(Duration.ofSeconds(5))
        .tls(TlsOptions.x509(Path.of("pki")).withHostname("dest.example").withAllowedClients("CN=a"))
        .build();
  }

  @Test
  void everySupportedEngineCapabilityHasAnApiConstant() {
    List<String> api = Arrays.stream(MigrationOptions.Capability.values()).map(MigrationOptions.Capability::qapiName).toList();
    List<String> missing = new ArrayList<>();
    for (MigrationCapability c : MigrationCapability.values()) {
      if (c.supported() && !api.contains(c.qapiName())) {
        missing.add(c.qapiName());
      }
    }
    assertThat(missing).as("engine capabilities without a MigrationOptions.Capability constant").isEmpty();
    for (String name : api) {
      assertThat(MigrationCapability.fromQapiName(name).supported()).as(name).isTrue();
    }
  }

  @Test
  void everyEngineParameterHasATypedSetter() {
    Map<String, Object> set = everything().engineParameters();
    Map<String, Object> defaults = MigrationParameters.DEFAULT.toMap();
    List<String> missing = new ArrayList<>();
    for (String name : MigrationParameters.NAMES) {
      if (!set.containsKey(name) || Objects.equals(set.get(name), defaults.get(name))) {
        missing.add(name);
      }
    }
    assertThat(missing).as("engine parameters no MigrationOptions.Builder method reaches (add one, call it in everything())").isEmpty();
    // and the engine takes every value the API produces
    MigrationParameters p = MigrationParameters.DEFAULT.apply(set);
    assertThat(p.downtimeLimitMs()).isEqualTo(42);
    assertThat(p.precopyMaxTimeMs()).isEqualTo(5000);
    assertThat(p.tlsCreds()).isEqualTo(MigrationOptions.TLS_CREDS_ID);
    assertThat(p.tlsAuthz()).isEqualTo(MigrationOptions.TLS_AUTHZ_ID);
    assertThat(p.tlsHostname()).isEqualTo("dest.example");
  }

  @Test
  void plainOptionsClearTls() {
    Map<String, Object> p = MigrationOptions.builder().build().engineParameters();
    assertThat(p).containsEntry("tls-creds", "").containsEntry("tls-hostname", "").containsEntry("tls-authz", "");
  }

  @Test
  void valuesOutOfRangeAreRefusedAtOnceInQemusWords() {
    MigrationOptions.Builder b = MigrationOptions.builder();
    assertThatThrownBy(() -> b.cpuThrottleInitialPercent(0))
        .hasMessage("Parameter 'cpu-throttle-initial' expects a value between 1 and 99, got 0");
    assertThatThrownBy(() -> b.maxCpuThrottlePercent(100))
        .hasMessage("Parameter 'max-cpu-throttle' expects a value between 1 and 99, got 100");
    assertThatThrownBy(() -> b.throttleTriggerThresholdPercent(101))
        .hasMessage("Parameter 'throttle-trigger-threshold' expects a value between 1 and 100, got 101");
    assertThatThrownBy(() -> b.maxBandwidthBytesPerSec(-1)).hasMessageContaining("'max-bandwidth'");
    assertThatThrownBy(() -> b.downtimeLimit(Duration.ofDays(30))).hasMessageContaining("'downtime-limit'");
    assertThatThrownBy(() -> b.xbzrleCacheSizeBytes(1)).hasMessageContaining("'xbzrle-cache-size'");
    assertThatThrownBy(() -> b.precopyMaxPasses(-1)).hasMessageContaining("'ferry-precopy-max-passes'");
    assertThatThrownBy(() -> TlsOptions.x509(Path.of("x")).withVerifyPeer(false).withAllowedClients("CN=a"))
        .hasMessageContaining("verify-peer");
  }
}
