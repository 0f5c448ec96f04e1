package dev.ferry.qmp;

import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.util.List;

/**
 * Where a monitor listens and how it is protected: {@code unix:PATH} or {@code tcp:HOST:PORT},
 * then options as QEMU's socket chardev spells them: {@code ,tls-creds=ID} (a {@code
 * tls-creds-x509} object, endpoint server), {@code ,tls-authz=ID} (which client certificates may
 * connect), and Ferry's {@code ,insecure=on}.
 *
 * <p>The defaults are a security engineer's: a tcp monitor without TLS listens on loopback only (an
 * empty host, {@code tcp::4444}, means 127.0.0.1, not every address), and naming another address
 * without TLS is refused unless {@code insecure=on} says it is meant (the server then says so in
 * one warning line), since whoever reaches a monitor controls the machine.
 *
 * @param uri the monitor URI without options; an empty tcp host already replaced by the loopback
 *     address when there is no TLS
 * @param tlsCreds id of the server credentials, or null for none
 * @param tlsAuthz id of the authorization object, or null for any certificate from the CA
 * @param insecure the user asked for a plain-text monitor on a non-loopback address
 */
public record MonitorAddress(String uri, String tlsCreds, String tlsAuthz, boolean insecure) {

  /**
   * Parses {@code URI[,tls-creds=ID][,tls-authz=ID][,insecure=on]}.
   *
   * @throws IllegalArgumentException one line saying what is wrong (and how to mean it)
   */
  public static MonitorAddress parse(String spec) {
    List<String> parts = List.of(spec.split(",", -1));
    String uri = parts.get(0);
    String creds = null;
    String authz = null;
    boolean insecure = false;
    for (String opt : parts.subList(1, parts.size())) {
      int eq = opt.indexOf('=');
      String key = eq < 0 ? opt : opt.substring(0, eq);
      String value = eq < 0 ? "" : opt.substring(eq + 1);
      switch (key) {
        case "tls-creds" -> creds = nonEmpty(spec, key, value);
        case "tls-authz" -> authz = nonEmpty(spec, key, value);
        case "insecure" -> {
          insecure =
              switch (value) {
                case "on", "yes", "true" -> true;
                case "off", "no", "false" -> false;
                default -> throw new IllegalArgumentException("insecure expects on or off in " + spec);
              };
        }
        default ->
            throw new IllegalArgumentException(
                "unknown monitor option '" + key + "' in " + spec + " (known: tls-creds, tls-authz, insecure)");
      }
    }
    QmpEndpoint ep = QmpEndpoint.parse(uri);
    if (authz != null && creds == null) {
      throw new IllegalArgumentException("tls-authz needs tls-creds in " + spec);
    }
    if (ep.address() instanceof UnixDomainSocketAddress) {
      if (creds != null) {
        throw new IllegalArgumentException("TLS is for tcp monitors; a unix socket is guarded by its file mode: " + spec);
      }
      return new MonitorAddress(uri, null, null, insecure);
    }
    InetSocketAddress a = (InetSocketAddress) ep.address();
    String host = uri.substring("tcp:".length(), uri.lastIndexOf(':'));
    if (creds == null) {
      if (host.isEmpty()) {
        uri = "tcp:127.0.0.1" + uri.substring(uri.lastIndexOf(':'));
      } else if (!insecure && (a.getAddress() == null || !a.getAddress().isLoopbackAddress())) {
        throw new IllegalArgumentException(
            "a monitor without TLS listens on loopback only; for " + uri
                + " add tls-creds=ID (and tls-authz=ID), or insecure=on if anyone who reaches it may control the machine");
      }
    }
    return new MonitorAddress(uri, creds, authz, insecure && creds == null && !isLoopback(a));
  }

  private static boolean isLoopback(InetSocketAddress a) {
    return a.getAddress() != null && a.getAddress().isLoopbackAddress();
  }

  private static String nonEmpty(String spec, String key, String value) {
    if (value.isEmpty()) {
      throw new IllegalArgumentException(key + " needs an object id in " + spec);
    }
    return value;
  }
}
