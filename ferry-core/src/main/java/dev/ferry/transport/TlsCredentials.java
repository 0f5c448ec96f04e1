package dev.ferry.transport;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;

/**
 * x509 credentials for TLS (QEMU's {@code tls-creds-x509} object): a CA certificate to verify the
 * peer with, and this side's certificate and key, loaded from a directory with QEMU's file names.
 *
 * <table>
 *   <caption>Files of a credentials directory</caption>
 *   <tr><th>file</th><th>server endpoint</th><th>client endpoint</th></tr>
 *   <tr><td>{@value #CA_CERT}</td><td>required when verify-peer is on</td><td>required when
 *       verify-peer is on</td></tr>
 *   <tr><td>{@value #SERVER_CERT}, {@value #SERVER_KEY}</td><td>required</td><td>-</td></tr>
 *   <tr><td>{@value #CLIENT_CERT}, {@value #CLIENT_KEY}</td><td>-</td><td>optional (without them
 *       the client has no certificate to show, and a verifying server refuses it)</td></tr>
 * </table>
 *
 * <p>Certificates are PEM (a file may hold a chain, leaf first); keys are PEM PKCS#8 ({@code BEGIN
 * PRIVATE KEY}, what {@code openssl genpkey} writes), PKCS#1 RSA ({@code BEGIN RSA PRIVATE KEY},
 * what GnuTLS' {@code certtool} writes) or SEC1 EC ({@code BEGIN EC PRIVATE KEY}); the last two are
 * re-wrapped as PKCS#8 (a DER envelope, no cryptography) for the JDK's {@link KeyFactory}.
 * Encrypted keys are refused: QEMU's {@code passwordid} is not supported. QEMU's optional {@code
 * ca-crl.pem} is not read.
 *
 * <p>Unlike QEMU, loading does not refuse a certificate outside its validity period: the handshake
 * refuses it, with the reason, so an expiry shows up where it matters (a running destination whose
 * certificate expires) rather than only at start.
 */
public final class TlsCredentials {
  public static final String CA_CERT = "ca-cert.pem";
  public static final String SERVER_CERT = "server-cert.pem";
  public static final String SERVER_KEY = "server-key.pem";
  public static final String CLIENT_CERT = "client-cert.pem";
  public static final String CLIENT_KEY = "client-key.pem";

  /** Which end of a TLS connection the credentials are for (QAPI {@code QCryptoTLSCredsEndpoint}). */
  public enum Endpoint {
    SERVER("server"),
    CLIENT("client");

    private final String qapiName;

    Endpoint(String qapiName) {
      this.qapiName = qapiName;
    }

    public String qapiName() {
      return qapiName;
    }

    /** {@code server} or {@code client}; IllegalArgumentException otherwise. */
    public static Endpoint fromQapiName(String name) {
      for (Endpoint e : values()) {
        if (e.qapiName.equals(name)) {
          return e;
        }
      }
      throw new IllegalArgumentException(
          "Parameter 'endpoint' does not accept value '" + name + "' (expected server or client)");
    }
  }

  private final String id;
  private final Path dir;
  private final Endpoint endpoint;
  private final boolean verifyPeer;
  private final List<X509Certificate> caCerts;
  private final List<X509Certificate> chain;
  private final PrivateKey key;

  private TlsCredentials(
      String id,
      Path dir,
      Endpoint endpoint,
      boolean verifyPeer,
      List<X509Certificate> caCerts,
      List<X509Certificate> chain,
      PrivateKey key) {
    this.id = id;
    this.dir = dir;
    this.endpoint = endpoint;
    this.verifyPeer = verifyPeer;
    this.caCerts = caCerts;
    this.chain = chain;
    this.key = key;
  }

  /**
   * Loads credentials {@code id} from {@code dir}.
   *
   * @throws IOException one line naming the file and what is wrong with it
   */
  public static TlsCredentials load(String id, Path dir, Endpoint endpoint, boolean verifyPeer)
      throws IOException {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(dir, "dir");
    Objects.requireNonNull(endpoint, "endpoint");
    List<X509Certificate> ca = List.of();
    if (verifyPeer || Files.exists(dir.resolve(CA_CERT))) {
      ca = readCertificates(dir.resolve(CA_CERT));
    }
    String certName = endpoint == Endpoint.SERVER ? SERVER_CERT : CLIENT_CERT;
    String keyName = endpoint == Endpoint.SERVER ? SERVER_KEY : CLIENT_KEY;
    List<X509Certificate> chain = List.of();
    PrivateKey key = null;
    boolean required = endpoint == Endpoint.SERVER;
    if (required || Files.exists(dir.resolve(certName)) || Files.exists(dir.resolve(keyName))) {
      chain = readCertificates(dir.resolve(certName));
      key = readPrivateKey(dir.resolve(keyName), chain.get(0));
    }
    return new TlsCredentials(id, dir, endpoint, verifyPeer, ca, chain, key);
  }

  public String id() {
    return id;
  }

  public Path dir() {
    return dir;
  }

  public Endpoint endpoint() {
    return endpoint;
  }

  public boolean verifyPeer() {
    return verifyPeer;
  }

  /** The CA certificates peers must chain to (empty when verify-peer is off and there is none). */
  public List<X509Certificate> caCertificates() {
    return caCerts;
  }

  /** This side's certificate chain, leaf first; empty for a client without a certificate. */
  public List<X509Certificate> certificateChain() {
    return chain;
  }

  /** Key managers presenting this side's certificate (none for a client without one). */
  KeyManager[] keyManagers() throws GeneralSecurityException {
    if (key == null) {
      return new KeyManager[0];
    }
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try {
      ks.load(null, null);
    } catch (IOException e) {
      throw new GeneralSecurityException(e);
    }
    char[] pw = new char[0];
    ks.setKeyEntry("self", key, pw, chain.toArray(new X509Certificate[0]));
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(ks, pw);
    return kmf.getKeyManagers();
  }

  @Override
  public String toString() {
    return "tls-creds-x509[id=" + id + ", dir=" + dir + ", endpoint=" + endpoint.qapiName()
        + ", verify-peer=" + (verifyPeer ? "on" : "off") + "]";
  }

  // ------------------------------------------------------------------ PEM

  private static final Pattern PEM =
      Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \\1-----");

  private static String readText(Path f) throws IOException {
    try {
      return Files.readString(f, StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      throw new IOException("Unable to access credentials " + f + ": No such file or directory", e);
    } catch (IOException e) {
      throw new IOException("Unable to access credentials " + f + ": " + Transports.describe(e), e);
    }
  }

  static List<X509Certificate> readCertificates(Path f) throws IOException {
    String text = readText(f);
    List<X509Certificate> certs = new ArrayList<>();
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      Matcher m = PEM.matcher(text);
      while (m.find()) {
        if (m.group(1).equals("CERTIFICATE")) {
          byte[] der = base64(f, m.group(2));
          certs.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
        }
      }
    } catch (CertificateException e) {
      throw new IOException("Unable to load certificate " + f + ": " + e.getMessage(), e);
    }
    if (certs.isEmpty()) {
      throw new IOException("Unable to load certificate " + f + ": no PEM CERTIFICATE in it");
    }
    return List.copyOf(certs);
  }

  /**
   * Reads a key; {@code cert} (its certificate) supplies the curve of a SEC1 key that does not name
   * it (the curve is optional there).
   */
  static PrivateKey readPrivateKey(Path f, X509Certificate cert) throws IOException {
    String text = readText(f);
    Matcher m = PEM.matcher(text);
    while (m.find()) {
      String type = m.group(1);
      byte[] pkcs8 =
          switch (type) {
            case "PRIVATE KEY" -> base64(f, m.group(2));
            case "RSA PRIVATE KEY" -> Der.pkcs8FromPkcs1Rsa(base64(f, m.group(2)));
            case "EC PRIVATE KEY" -> Der.pkcs8FromSec1(f, base64(f, m.group(2)), cert);
            case "ENCRYPTED PRIVATE KEY" ->
                throw new IOException(
                    "Unable to load private key " + f + ": encrypted keys are not supported");
            default -> null;
          };
      if (pkcs8 == null) {
        continue;
      }
      for (String alg : new String[] {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"}) {
        try {
          return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
        } catch (GeneralSecurityException e) {
          // not this algorithm: try the next
        }
      }
      throw new IOException(
          "Unable to load private key " + f + ": not an RSA, EC or EdDSA key the JDK can read");
    }
    throw new IOException("Unable to load private key " + f + ": no PEM PRIVATE KEY in it");
  }

  private static byte[] base64(Path f, String body) throws IOException {
    try {
      return Base64.getMimeDecoder().decode(body.trim());
    } catch (IllegalArgumentException e) {
      throw new IOException("Unable to load " + f + ": bad base64 in PEM: " + e.getMessage(), e);
    }
  }

  /**
   * Just enough DER to re-wrap PKCS#1 and SEC1 keys as PKCS#8 (RFC 5208, RFC 5915 §3): framing
   * only, the key bytes are carried as they are.
   */
  static final class Der {
    private Der() {}

    /** AlgorithmIdentifier rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters. */
    private static final byte[] RSA_ALG = {
      0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01,
      0x01, 0x05, 0x00
    };
    /** OID id-ecPublicKey (1.2.840.10045.2.1). */
    private static final byte[] EC_OID = {
      0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01
    };
    private static final byte[] VERSION_0 = {0x02, 0x01, 0x00};

    static byte[] pkcs8FromPkcs1Rsa(byte[] pkcs1) {
      return tlv(0x30, concat(VERSION_0, RSA_ALG, tlv(0x04, pkcs1)));
    }

    static byte[] pkcs8FromSec1(Path f, byte[] sec1, X509Certificate cert) throws IOException {
      // ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] parameters, [1] publicKey }
      byte[] curve = null;
      int[] outer = header(sec1, 0);
      if (sec1[0] != 0x30) {
        throw new IOException("Unable to load private key " + f + ": not a SEC1 EC key");
      }
      int p = outer[0];
      int end = Math.min(sec1.length, outer[0] + outer[1]);
      while (p < end) {
        int tag = sec1[p] & 0xff;
        int[] h = header(sec1, p);
        if (tag == 0xa0) {
          curve = java.util.Arrays.copyOfRange(sec1, h[0], h[0] + h[1]);
        }
        p = h[0] + h[1];
      }
      byte[] algorithm;
      if (curve != null) {
        algorithm = tlv(0x30, concat(EC_OID, curve));
      } else if (cert != null && cert.getPublicKey().getAlgorithm().equals("EC")) {
        // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey }
        byte[] spki = cert.getPublicKey().getEncoded();
        int[] h = header(spki, 0);
        int[] alg = header(spki, h[0]);
        algorithm = java.util.Arrays.copyOfRange(spki, h[0], alg[0] + alg[1]);
      } else {
        throw new IOException(
            "Unable to load private key " + f + ": the EC key does not name its curve");
      }
      return tlv(0x30, concat(VERSION_0, algorithm, tlv(0x04, sec1)));
    }

    /** {start of content, content length} of the TLV at {@code p}. */
    private static int[] header(byte[] b, int p) throws IOException {
      if (p + 2 > b.length) {
        throw new IOException("truncated DER");
      }
      int len = b[p + 1] & 0xff;
      int start = p + 2;
      if (len >= 0x80) {
        int n = len & 0x7f;
        if (n == 0 || n > 3 || start + n > b.length) {
          throw new IOException("bad DER length");
        }
        len = 0;
        for (int i = 0; i < n; i++) {
          len = (len << 8) | (b[start + i] & 0xff);
        }
        start += n;
      }
      if (start + len > b.length) {
        throw new IOException("truncated DER");
      }
      return new int[] {start, len};
    }

    static byte[] tlv(int tag, byte[] content) {
      ByteArrayOutputStream o = new ByteArrayOutputStream(content.length + 6);
      o.write(tag);
      int n = content.length;
      if (n < 0x80) {
        o.write(n);
      } else if (n < 0x100) {
        o.write(0x81);
        o.write(n);
      } else if (n < 0x10000) {
        o.write(0x82);
        o.write(n >> 8);
        o.write(n);
      } else {
        o.write(0x83);
        o.write(n >> 16);
        o.write(n >> 8);
        o.write(n);
      }
      o.writeBytes(content);
      return o.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
      ByteArrayOutputStream o = new ByteArrayOutputStream();
      for (byte[] p : parts) {
        o.writeBytes(p);
      }
      return o.toByteArray();
    }
  }
}
