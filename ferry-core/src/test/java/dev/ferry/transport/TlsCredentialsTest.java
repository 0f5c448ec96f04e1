package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.testing.TestPki;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Credentials directories as QEMU names their files, the key forms tools write, and -object syntax. */
class TlsCredentialsTest {
  @TempDir Path dir;

  @Test
  void everyKeyFormLoads() throws Exception {
    TestPki pki = TestPki.create("CA");
    for (TestPki.KeyForm form : TestPki.KeyForm.values()) {
      Path d = pki.serverDir(dir.resolve(form.name()), TestPki.Spec.of("CN=localhost").key(form));
      String head = Files.readString(d.resolve("server-key.pem")).lines().findFirst().orElseThrow();
      TlsCredentials c = TlsCredentials.load("t", d, TlsCredentials.Endpoint.SERVER, true);
      assertThat(c.certificateChain()).as(form + " " + head).hasSize(1);
      assertThat(c.keyManagers()).as(head).isNotEmpty();
    }
  }

  @Test
  void missingFileIsOneLineNamingIt() {
    assertThatThrownBy(() -> TlsCredentials.load("t", dir, TlsCredentials.Endpoint.SERVER, true))
        .hasMessage("Unable to access credentials " + dir.resolve("ca-cert.pem") + ": No such file or directory");
  }

  @Test
  void clientWithoutCertificateLoadsWithNone() throws Exception {
    TestPki pki = TestPki.create("CA");
    Path d = pki.clientDir(dir.resolve("c"));
    Files.delete(d.resolve("client-cert.pem"));
    Files.delete(d.resolve("client-key.pem"));
    TlsCredentials c = TlsCredentials.load("t", d, TlsCredentials.Endpoint.CLIENT, true);
    assertThat(c.certificateChain()).isEmpty();
  }

  @Test
  void objectOptionSyntaxAsQemus() throws Exception {
    TestPki pki = TestPki.create("CA");
    Path d = pki.serverDir(dir.resolve("s"));
    TlsObjects o = new TlsObjects();
    o.addFromOption("tls-creds-x509,id=tls0,dir=" + d + ",endpoint=server,verify-peer=on");
    assertThat(o.credentials("tls0", TlsCredentials.Endpoint.SERVER).verifyPeer()).isTrue();
    assertThatThrownBy(() -> o.credentials("tls0", TlsCredentials.Endpoint.CLIENT))
        .hasMessage("Expected TLS credentials for a client endpoint");
    o.addFromOption("authz-simple,id=a1,identity=CN=laptop.example.com,,O=Example Org,,C=GB");
    assertThat(o.authz("a1").isAllowed("CN=laptop.example.com,O=Example Org,C=GB")).isTrue();
    o.addFromOption("authz-list,id=a2,policy=deny,rules.0.match=CN=*.example.com*,rules.0.policy=allow,rules.0.format=glob,"
        + "rules.1.match=CN=bad,rules.1.policy=deny");
    assertThat(o.authz("a2").isAllowed("CN=host.example.com,O=X")).isTrue();
    assertThat(o.authz("a2").isAllowed("CN=bad")).isFalse();
    assertThat(o.authz("a2").isAllowed("CN=other")).isFalse();
    assertThatThrownBy(() -> o.addFromOption("authz-simple,id=a1,identity=x"))
        .hasMessageContaining("duplicate");
    assertThatThrownBy(() -> o.addFromOption("tls-creds-x509,id=t2,dir=" + d + ",colour=blue"))
        .hasMessage("Property 'tls-creds-x509.colour' not found");
    assertThatThrownBy(() -> o.addFromOption("secret,id=s"))
        .hasMessageStartingWith("invalid object type: secret");
    o.delete("a1");
    assertThatThrownBy(() -> o.authz("a1")).hasMessage("Cannot find QAuthZ object ID a1");
    o.add("authz-list", Map.of("id", "a3", "rules", List.of(Map.of("match", "CN=x", "policy", "allow"))));
    assertThat(o.authz("a3").isAllowed("CN=x")).isTrue();
  }

  @Test
  void hostnameRulesAreGnutls() throws Exception {
    TestPki pki = TestPki.create("CA");
    Path d = pki.serverDir(dir.resolve("w"), TestPki.Spec.of("CN=ignored.example.com").sans("DNS:*.example.com", "IP:10.0.0.1"));
    var cert = TlsCredentials.load("t", d, TlsCredentials.Endpoint.SERVER, true).certificateChain().get(0);
    assertThat(TlsPeerCheck.matchesHostname(cert, "dst.example.com")).isTrue();
    assertThat(TlsPeerCheck.matchesHostname(cert, "DST.Example.COM")).isTrue();
    assertThat(TlsPeerCheck.matchesHostname(cert, "a.b.example.com")).isFalse();
    assertThat(TlsPeerCheck.matchesHostname(cert, "example.com")).isFalse();
    assertThat(TlsPeerCheck.matchesHostname(cert, "ignored.example.com")).isTrue(); // by the wildcard
    assertThat(TlsPeerCheck.matchesHostname(cert, "10.0.0.1")).isTrue();
    assertThat(TlsPeerCheck.matchesHostname(cert, "10.0.0.2")).isFalse();
    Path cn = pki.serverDir(dir.resolve("cn"), TestPki.Spec.of("CN=only-cn.example.com"));
    var c2 = TlsCredentials.load("t", cn, TlsCredentials.Endpoint.SERVER, true).certificateChain().get(0);
    assertThat(TlsPeerCheck.matchesHostname(c2, "only-cn.example.com")).as("CN when no DNS name").isTrue();
  }
}
