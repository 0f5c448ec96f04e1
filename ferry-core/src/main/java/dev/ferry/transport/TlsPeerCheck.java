package dev.ferry.transport;

import java.net.InetAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * How a TLS endpoint judges its peer's certificate, in QEMU's order and with a reason for each
 * refusal: validity period, chain to the CA of {@code ca-cert.pem} (the JDK's PKIX validator), then
 * on a client the host name ({@code tls-hostname} or the URI's host, GnuTLS' rules: DNS and IP
 * subject alternative names, the common name only when there is no DNS name, a wildcard only as the
 * whole left-most label), on a server the authorization list ({@code tls-authz}).
 *
 * <p>A refusal is a {@link Refused} whose cause steers the alert JSSE sends (an expired
 * certificate gets {@code certificate_expired}), so the peer learns as much as TLS can tell it.
 */
final class TlsPeerCheck extends X509ExtendedTrustManager {

  /** A certificate refused for the reason in the message. */
  static final class Refused extends CertificateException {
    private static final long serialVersionUID = 1L;

    Refused(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private final X509TrustManager pkix;
  private final String hostname;
  private final Authz authz;

  /**
   * @param hostname on a client, the name the server's certificate must carry; null on a server
   * @param authz on a server, who may connect (null: everyone with a certificate from the CA)
   */
  TlsPeerCheck(List<X509Certificate> ca, String hostname, Authz authz) throws GeneralSecurityException {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try {
      ks.load(null, null);
    } catch (java.io.IOException e) {
      throw new GeneralSecurityException(e);
    }
    int i = 0;
    for (X509Certificate c : ca) {
      ks.setCertificateEntry("ca" + i++, c);
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(ks);
    X509TrustManager found = null;
    for (TrustManager tm : tmf.getTrustManagers()) {
      if (tm instanceof X509TrustManager x) {
        found = x;
      }
    }
    if (found == null) {
      throw new GeneralSecurityException("no PKIX trust manager");
    }
    this.pkix = found;
    this.hostname = hostname;
    this.authz = authz;
  }

  static String dn(X509Certificate c) {
    return c.getSubjectX500Principal().getName();
  }

  private static void checkTimes(String who, X509Certificate[] chain) throws Refused {
    Date now = new Date();
    for (X509Certificate c : chain) {
      String what = c == chain[0] ? who + " certificate '" + dn(c) + "'" : "the certificate '" + dn(c) + "' in the " + who + " chain";
      try {
        c.checkValidity(now);
      } catch (CertificateExpiredException e) {
        throw new Refused(
            what + " has expired (not after " + c.getNotAfter().toInstant() + ")",
            new CertPathValidatorException(e.getMessage(), e, null, -1, CertPathValidatorException.BasicReason.EXPIRED));
      } catch (CertificateNotYetValidException e) {
        throw new Refused(
            what + " is not yet valid (not before " + c.getNotBefore().toInstant() + ")",
            new CertPathValidatorException(e.getMessage(), e, null, -1, CertPathValidatorException.BasicReason.NOT_YET_VALID));
      }
    }
  }

  private void checkChain(String who, X509Certificate[] chain, String authType, boolean client) throws Refused {
    try {
      if (client) {
        pkix.checkClientTrusted(chain, authType);
      } else {
        pkix.checkServerTrusted(chain, authType);
      }
    } catch (CertificateException e) {
      throw new Refused(
          who + " certificate '" + dn(chain[0]) + "' is not issued by the CA in " + TlsCredentials.CA_CERT
              + " (issuer '" + chain[chain.length - 1].getIssuerX500Principal().getName() + "')",
          e);
    }
  }

  private static void checkPresent(String who, X509Certificate[] chain) throws Refused {
    if (chain == null || chain.length == 0) {
      throw new Refused(who + " presented no certificate", null);
    }
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    checkClient(chain, authType);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    checkClient(chain, authType);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkClient(chain, authType);
  }

  private void checkClient(X509Certificate[] chain, String authType) throws CertificateException {
    String who = "the client's";
    checkPresent("the client", chain);
    checkTimes(who, chain);
    checkChain(who, chain, authType, true);
    if (authz != null && !authz.isAllowed(dn(chain[0]))) {
      throw new Refused("the client's certificate '" + dn(chain[0]) + "' is not allowed by tls-authz '" + authz.id() + "'", null);
    }
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    checkServer(chain, authType);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    checkServer(chain, authType);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkServer(chain, authType);
  }

  private void checkServer(X509Certificate[] chain, String authType) throws CertificateException {
    String who = "the server's";
    checkPresent("the server", chain);
    checkTimes(who, chain);
    checkChain(who, chain, authType, false);
    if (hostname != null && !matchesHostname(chain[0], hostname)) {
      throw new Refused(
          "the server's certificate '" + dn(chain[0]) + "' does not match hostname '" + hostname + "' (it names "
              + String.join(", ", names(chain[0])) + ")",
          null);
    }
  }

  /**
   * None named: a server then sends no {@code certificate_authorities} list, so a client shows its
   * certificate whoever issued it (as GnuTLS does) and hears why it was refused, instead of
   * silently showing none.
   */
  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return new X509Certificate[0];
  }

  // ------------------------------------------------------------------ host names

  private static final int SAN_DNS = 2;
  private static final int SAN_IP = 7;

  private static List<String> names(X509Certificate c) {
    List<String> out = new ArrayList<>();
    for (List<?> san : sans(c)) {
      int type = (Integer) san.get(0);
      if (type == SAN_DNS) {
        out.add("DNS:" + san.get(1));
      } else if (type == SAN_IP) {
        out.add("IP:" + san.get(1));
      }
    }
    String cn = commonName(c);
    if (cn != null) {
      out.add("CN=" + cn);
    }
    return out.isEmpty() ? List.of("nothing") : out;
  }

  private static Collection<List<?>> sans(X509Certificate c) {
    try {
      Collection<List<?>> s = c.getSubjectAlternativeNames();
      return s == null ? List.of() : s;
    } catch (CertificateParsingException e) {
      return List.of();
    }
  }

  private static String commonName(X509Certificate c) {
    try {
      LdapName n = new LdapName(c.getSubjectX500Principal().getName());
      String cn = null;
      for (Rdn r : n.getRdns()) {
        if (r.getType().equalsIgnoreCase("CN")) {
          cn = String.valueOf(r.getValue());
        }
      }
      return cn;
    } catch (InvalidNameException e) {
      return null;
    }
  }

  /** GnuTLS' {@code gnutls_x509_crt_check_hostname} rules, as QEMU applies them. */
  static boolean matchesHostname(X509Certificate c, String host) {
    boolean ipLiteral = isIpLiteral(host);
    boolean anyDns = false;
    for (List<?> san : sans(c)) {
      int type = (Integer) san.get(0);
      String value = String.valueOf(san.get(1));
      if (type == SAN_IP && ipLiteral && sameAddress(value, host)) {
        return true;
      }
      if (type == SAN_DNS) {
        anyDns = true;
        if (!ipLiteral && dnsMatches(value, host)) {
          return true;
        }
      }
    }
    if (!anyDns && !ipLiteral) {
      String cn = commonName(c);
      return cn != null && dnsMatches(cn, host);
    }
    return false;
  }

  private static boolean isIpLiteral(String host) {
    return host.indexOf(':') >= 0 || host.matches("[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+");
  }

  private static boolean sameAddress(String a, String b) {
    try {
      return InetAddress.getByName(a).equals(InetAddress.getByName(b));
    } catch (UnknownHostException e) {
      return false;
    }
  }

  private static boolean dnsMatches(String pattern, String host) {
    String p = pattern.toLowerCase(Locale.ROOT);
    String h = host.toLowerCase(Locale.ROOT);
    if (p.endsWith(".")) {
      p = p.substring(0, p.length() - 1);
    }
    if (h.endsWith(".")) {
      h = h.substring(0, h.length() - 1);
    }
    if (p.startsWith("*.")) {
      int dot = h.indexOf('.');
      // the wildcard stands for exactly one label, and never for a whole top-level domain
      return dot > 0 && p.indexOf('.', 2) > 0 && h.substring(dot).equals(p.substring(1));
    }
    return p.equals(h);
  }
}
