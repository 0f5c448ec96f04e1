package dev.ferry.testing;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A throw-away certificate authority for TLS tests (Bouncy Castle, test scope only): a CA and
 * server/client certificates written into directories with QEMU's file names ({@code ca-cert.pem},
 * {@code server-cert.pem}, {@code server-key.pem}, {@code client-cert.pem}, {@code
 * client-key.pem}). Keys are EC P-256 (fast to make) in PKCS#8 unless asked for RSA or the older
 * PEM forms. Nothing here is ever committed: every test makes its own.
 */
public final class TestPki {
  private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime() & 0xffffffL);

  /** Key type and PEM form of a key file. */
  public enum KeyForm {
    /** EC P-256, {@code BEGIN PRIVATE KEY}. */
    EC_PKCS8,
    /** EC P-256, {@code BEGIN EC PRIVATE KEY} (SEC1). */
    EC_SEC1,
    /** RSA 2048, {@code BEGIN RSA PRIVATE KEY} (PKCS#1, GnuTLS certtool's default). */
    RSA_PKCS1,
    /** RSA 2048, {@code BEGIN PRIVATE KEY}. */
    RSA_PKCS8
  }

  private final KeyPair caKey;
  private final X509Certificate caCert;

  private TestPki(KeyPair caKey, X509Certificate caCert) {
    this.caKey = caKey;
    this.caCert = caCert;
  }

  /** A new CA named {@code CN=<cn>}. */
  public static TestPki create(String cn) {
    try {
      KeyPair kp = keyPair(KeyForm.EC_PKCS8);
      X500Name name = x500("CN=" + cn + ",O=Ferry tests");
      Instant now = Instant.now();
      JcaX509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              name,
              BigInteger.valueOf(SERIAL.incrementAndGet()),
              Date.from(now.minus(Duration.ofHours(1))),
              Date.from(now.plus(Duration.ofDays(30))),
              name,
              kp.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      X509Certificate cert = sign(b, kp);
      return new TestPki(kp, cert);
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public X509Certificate caCertificate() {
    return caCert;
  }

  /** What to issue. */
  public record Spec(String subject, List<String> sans, Instant notBefore, Instant notAfter, KeyForm keyForm) {
    /** Valid from an hour ago for a day, EC PKCS#8, no alternative names. */
    public static Spec of(String subject) {
      Instant now = Instant.now();
      return new Spec(subject, List.of(), now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(1)), KeyForm.EC_PKCS8);
    }

    /** Alternative names: {@code DNS:name} or {@code IP:addr}. */
    public Spec sans(String... names) {
      return new Spec(subject, List.of(names), notBefore, notAfter, keyForm);
    }

    public Spec valid(Instant from, Instant to) {
      return new Spec(subject, sans, from, to, keyForm);
    }

    public Spec key(KeyForm form) {
      return new Spec(subject, sans, notBefore, notAfter, form);
    }
  }

  /** A server's directory: ca-cert.pem, server-cert.pem, server-key.pem. */
  public Path serverDir(Path dir, Spec spec) {
    return write(dir, spec, true);
  }

  /** A client's directory: ca-cert.pem, client-cert.pem, client-key.pem. */
  public Path clientDir(Path dir, Spec spec) {
    return write(dir, spec, false);
  }

  /** The usual server: CN=localhost with DNS:localhost and IP:127.0.0.1, ::1. */
  public Path serverDir(Path dir) {
    return serverDir(dir, Spec.of("CN=localhost,O=Ferry tests").sans("DNS:localhost", "IP:127.0.0.1", "IP:::1"));
  }

  /** The usual client: CN=ferry-client,O=Ferry tests. */
  public Path clientDir(Path dir) {
    return clientDir(dir, Spec.of(CLIENT_DN));
  }

  /** The distinguished name of {@link #clientDir(Path)}'s certificate, RFC 4514. */
  public static final String CLIENT_DN = "CN=ferry-client,O=Ferry tests";

  private Path write(Path dir, Spec spec, boolean server) {
    try {
      Files.createDirectories(dir);
      KeyPair kp = keyPair(spec.keyForm());
      JcaX509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              caCert,
              BigInteger.valueOf(SERIAL.incrementAndGet()),
              Date.from(spec.notBefore()),
              Date.from(spec.notAfter()),
              x500(spec.subject()),
              kp.getPublic());
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
      b.addExtension(
          Extension.extendedKeyUsage,
          false,
          new ExtendedKeyUsage(server ? KeyPurposeId.id_kp_serverAuth : KeyPurposeId.id_kp_clientAuth));
      if (!spec.sans().isEmpty()) {
        List<GeneralName> names = new ArrayList<>();
        for (String s : spec.sans()) {
          names.add(
              s.startsWith("IP:")
                  ? new GeneralName(GeneralName.iPAddress, s.substring(3))
                  : new GeneralName(GeneralName.dNSName, s.substring(s.indexOf(':') + 1)));
        }
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names.toArray(new GeneralName[0])));
      }
      X509Certificate cert = sign(b, caKey);
      String prefix = server ? "server" : "client";
      Files.writeString(dir.resolve("ca-cert.pem"), pem(caCert));
      Files.writeString(dir.resolve(prefix + "-cert.pem"), pem(cert));
      Files.writeString(dir.resolve(prefix + "-key.pem"), keyPem(kp, spec.keyForm()));
      return dir;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** RFC 4514 text to a name in the usual DER order (most significant first), as openssl writes it. */
  private static X500Name x500(String rfc4514) {
    return X500Name.getInstance(new javax.security.auth.x500.X500Principal(rfc4514).getEncoded());
  }

  private static KeyPair keyPair(KeyForm form) throws GeneralSecurityException {
    if (form == KeyForm.RSA_PKCS1 || form == KeyForm.RSA_PKCS8) {
      KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
      g.initialize(2048);
      return g.generateKeyPair();
    }
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    return g.generateKeyPair();
  }

  private static X509Certificate sign(JcaX509v3CertificateBuilder b, KeyPair signer) throws GeneralSecurityException {
    try {
      String alg = signer.getPrivate().getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
      return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder(alg).build(signer.getPrivate())));
    } catch (org.bouncycastle.operator.OperatorCreationException e) {
      throw new GeneralSecurityException(e);
    }
  }

  private static String pem(Object o) throws IOException {
    StringWriter w = new StringWriter();
    try (JcaPEMWriter p = new JcaPEMWriter(w)) {
      p.writeObject(o);
    }
    return w.toString();
  }

  private static String keyPem(KeyPair kp, KeyForm form) throws IOException {
    return switch (form) {
      case EC_PKCS8, RSA_PKCS8 -> {
        try {
          yield pem(new JcaPKCS8Generator(kp.getPrivate(), null).generate());
        } catch (org.bouncycastle.util.io.pem.PemGenerationException e) {
          throw new UncheckedIOException(e);
        }
      }
      // the traditional OpenSSL forms: BC writes a KeyPair as RSA/EC PRIVATE KEY
      case EC_SEC1, RSA_PKCS1 -> pem(kp);
    };
  }
}
