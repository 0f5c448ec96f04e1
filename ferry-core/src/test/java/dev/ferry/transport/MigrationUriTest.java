package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class MigrationUriTest {
  @Test
  void parsesEveryTransport() {
    assertThat(MigrationUri.parse("tcp:127.0.0.1:4444"))
        .isEqualTo(new MigrationUri.Tcp("127.0.0.1", 4444));
    assertThat(MigrationUri.parse("tcp:localhost:0")).isEqualTo(new MigrationUri.Tcp("localhost", 0));
    assertThat(MigrationUri.parse("tcp:[::1]:4444")).isEqualTo(new MigrationUri.Tcp("::1", 4444));
    assertThat(MigrationUri.parse("tcp::4444")).isEqualTo(new MigrationUri.Tcp("", 4444));
    assertThat(MigrationUri.parse("unix:/run/x.sock"))
        .isEqualTo(new MigrationUri.Unix(Path.of("/run/x.sock")));
    assertThat(MigrationUri.parse("exec:gzip -c > out:1.gz"))
        .isEqualTo(new MigrationUri.Exec("gzip -c > out:1.gz"));
    assertThat(MigrationUri.parse("fd:3")).isEqualTo(new MigrationUri.Fd(3));
    assertThat(MigrationUri.parse("file:snap.mig"))
        .isEqualTo(new MigrationUri.File(Path.of("snap.mig")));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "tcp:127.0.0.1:4444",
        "tcp:[::1]:0",
        "tcp:localhost:65535",
        "unix:/tmp/a b.sock",
        "exec:cat > x",
        "fd:0",
        "file:/tmp/s.mig"
      })
  void textRoundTrips(String uri) {
    assertThat(MigrationUri.parse(uri).text()).isEqualTo(uri);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "foo:bar|unknown transport 'foo' in 'foo:bar'; expected tcp:, unix:, exec:, fd: or file:",
        "127.0.0.1:4444|unknown transport '127.0.0.1' in '127.0.0.1:4444'; expected tcp:, unix:, exec:, fd: or file:",
        "nothing|bad migration URI 'nothing': no transport prefix; expected tcp:, unix:, exec:, fd: or file:",
        "tcp:host|bad migration URI 'tcp:host': expected tcp:HOST:PORT",
        "tcp:host:http|bad migration URI 'tcp:host:http': port must be a number 0..65535, got 'http'",
        "tcp:host:65536|bad migration URI 'tcp:host:65536': port must be a number 0..65535, got '65536'",
        "tcp:host:-1|bad migration URI 'tcp:host:-1': port must be a number 0..65535, got '-1'",
        "tcp:::1:4444|bad migration URI 'tcp:::1:4444': an IPv6 address must be bracketed, as in tcp:[::1]:4444",
        "tcp:[::1]4444|bad migration URI 'tcp:[::1]4444': expected tcp:[IPV6]:PORT",
        "unix:|bad migration URI 'unix:': empty socket path",
        "exec:|bad migration URI 'exec:': empty command",
        "fd:-2|bad migration URI 'fd:-2': descriptor must be a non-negative number, got '-2'",
        "file:|bad migration URI 'file:': empty file path",
      })
  void badUrisAreOneLineErrorsNamingTheUri(String uri, String message) {
    assertThatThrownBy(() -> MigrationUri.parse(uri))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }
}
