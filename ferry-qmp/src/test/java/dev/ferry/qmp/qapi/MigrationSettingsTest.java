package dev.ferry.qmp.qapi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import org.junit.jupiter.api.Test;

/** The one builder of migrate-set-capabilities / migrate-set-parameters arguments the CLI uses. */
class MigrationSettingsTest {
  @Test
  void capabilitiesInTheOrderSetAndParametersInQapiOrder() {
    MigrationSettings s = new MigrationSettings()
        .capability(MigrationCapability.EVENTS, true)
        .capability(MigrationCapability.RETURN_PATH, false)
        .capability(MigrationCapability.FERRY_AUTO_POSTCOPY, true)
        .parameter(MigrationParameter.DOWNTIME_LIMIT, 50)
        .parameter("max-bandwidth", 64L << 20)
        .parameter(MigrationParameter.TLS_CREDS, "tls0")
        .parameter("cpu-throttle-tailslow", true);
    assertThat(s.capabilitiesArguments().toString()).isEqualTo(
        "{\"capabilities\":[{\"capability\":\"events\",\"state\":true},{\"capability\":\"return-path\",\"state\":false},"
            + "{\"capability\":\"ferry-auto-postcopy\",\"state\":true}]}");
    assertThat(s.parametersArguments().toString()).isEqualTo(
        "{\"cpu-throttle-tailslow\":true,\"tls-creds\":\"tls0\",\"max-bandwidth\":67108864,\"downtime-limit\":50}");
  }

  @Test
  void emptyUntilSetAndBadValuesRefused() {
    MigrationSettings s = new MigrationSettings();
    assertThat(s.hasCapabilities()).isFalse();
    assertThat(s.hasParameters()).isFalse();
    assertThatThrownBy(() -> s.parameter("warp", 1)).hasMessage("unknown migration parameter 'warp'");
    assertThatThrownBy(() -> s.parameter(MigrationParameter.DOWNTIME_LIMIT, -1))
        .hasMessageContaining("bad value for downtime-limit");
    assertThat(s.capability(MigrationCapability.XBZRLE, false).capability(MigrationCapability.XBZRLE, true)
        .capabilitiesArguments().path("capabilities")).hasSize(1);
  }
}
