package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import dev.ferry.testing.TestPki;
import dev.ferry.transport.TlsCredentials;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** object-add/object-del and the tls-* migration parameters over QMP and HMP. */
class TlsParametersTest {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  @TempDir Path dir;

  @Test
  void objectsAndTlsParametersOverQmpAndHmp() throws Exception {
    Path creds = TestPki.create("CA").clientDir(dir.resolve("c"));
    try (MachineHost host = new MachineHost(Machine.builder().memory(4 << 20).program("idle").build())) {
      QmpDispatcher qmp = new QmpDispatcher(new EngineBackend(host, new SnapshotStore(dir.resolve("snap"), host)));
      ObjectNode add = F.objectNode().put("qom-type", "tls-creds-x509").put("id", "tls0").put("dir", creds.toString())
          .put("endpoint", "client").put("verify-peer", true);
      qmp.execute("object-add", add);
      assertThat(host.migration().objects().credentials("tls0", TlsCredentials.Endpoint.CLIENT).dir()).isEqualTo(creds);
      assertThatThrownBy(() -> qmp.execute("object-add", add)).isInstanceOf(QmpError.class).hasMessageContaining("duplicate");

      JsonNode before = qmp.execute("query-migrate-parameters", null);
      assertThat(before.path("tls-creds").asText("x")).isEmpty();
      assertThat(before.has("tls-hostname")).isTrue();
      assertThat(before.has("tls-authz")).isTrue();

      qmp.execute("migrate-set-parameters", F.objectNode().put("tls-creds", "tls0").put("tls-hostname", "dst.example.com"));
      qmp.hmp().execute("object_add authz-list,id=auth0,policy=deny,rules.0.match=CN=ferry-client*,rules.0.policy=allow,rules.0.format=glob");
      qmp.hmp().execute("migrate_set_parameter tls-authz auth0");
      JsonNode after = qmp.execute("query-migrate-parameters", null);
      assertThat(after.path("tls-creds").asText()).isEqualTo("tls0");
      assertThat(after.path("tls-hostname").asText()).isEqualTo("dst.example.com");
      assertThat(after.path("tls-authz").asText()).isEqualTo("auth0");
      assertThat(host.migration().objects().authz("auth0").isAllowed("CN=ferry-client,O=x")).isTrue();
      assertThat(qmp.hmp().execute("info migrate_parameters")).contains("tls-creds: 'tls0'").contains("tls-authz: 'auth0'");

      // JSON null resets a string parameter, as QEMU's StrOrNull
      qmp.execute("migrate-set-parameters", F.objectNode().putNull("tls-creds"));
      assertThat(qmp.execute("query-migrate-parameters", null).path("tls-creds").asText("x")).isEmpty();

      qmp.execute("object-del", F.objectNode().put("id", "auth0"));
      assertThatThrownBy(() -> qmp.execute("object-del", F.objectNode().put("id", "auth0"))).hasMessageContaining("not found");
      assertThatThrownBy(() -> qmp.execute("object-add", F.objectNode().put("qom-type", "tls-creds-x509").put("id", "bad")
              .put("dir", dir.resolve("none").toString()).put("endpoint", "server")))
          .hasMessageContaining("Unable to access credentials");
    }
  }
}
