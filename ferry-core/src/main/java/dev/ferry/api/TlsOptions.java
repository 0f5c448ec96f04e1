package dev.ferry.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * A migration inside TLS 1.3 with X.509 certificates (QEMU's {@code tls-creds-x509} object and the
 * {@code tls-creds}, {@code tls-hostname} and {@code tls-authz} parameters, as one value). The
 * directory holds QEMU's file names: {@code ca-cert.pem}, and {@code server-cert.pem}/{@code
 * server-key.pem} on the destination or {@code client-cert.pem}/{@code client-key.pem} on the
 * source ({@code bin/ferry-certs DIR} makes a test set). Which side the credentials are for follows
 * from the call: {@link FerryMachine#migrate} is the client, {@link FerryMachine#incoming} the
 * server. Immutable.
 *
 * @param credentialsDirectory where the PEM files are; read when the migration starts
 * @param verifyPeer check the peer's certificate against {@code ca-cert.pem} (QEMU's {@code
 *     verify-peer}, default true): the source checks the destination's name, the destination asks
 *     for a client certificate
 * @param hostname source: the name the destination's certificate must carry ({@code tls-hostname});
 *     empty: the host of a {@code tcp:} URI
 * @param allowedClients destination: the distinguished names of the client certificates allowed
 *     to connect, matched exactly ({@code tls-authz} with an {@code authz-list} of them, default
 *     policy deny); empty: any certificate the CA signed
 */
public record TlsOptions(Path credentialsDirectory, boolean verifyPeer, String hostname, List<String> allowedClients) {
  /** Checks the values and copies the list. */
  public TlsOptions {
    Objects.requireNonNull(credentialsDirectory, "credentialsDirectory");
    Objects.requireNonNull(hostname, "hostname");
    allowedClients = List.copyOf(allowedClients);
    if (!allowedClients.isEmpty() && !verifyPeer) {
      throw new IllegalArgumentException("allowed clients need verify-peer: without it no client certificate is asked for");
    }
  }

  /** X.509 credentials in {@code dir}, the peer verified, no hostname override, any client allowed. */
  public static TlsOptions x509(Path dir) {
    return new TlsOptions(dir, true, "", List.of());
  }

  /** These options with {@code verify-peer} set to {@code on}. */
  public TlsOptions withVerifyPeer(boolean on) {
    return new TlsOptions(credentialsDirectory, on, hostname, allowedClients);
  }

  /** These options with the name the destination's certificate must carry ({@code tls-hostname}). */
  public TlsOptions withHostname(String name) {
    return new TlsOptions(credentialsDirectory, verifyPeer, name, allowedClients);
  }

  /** These options allowing only clients whose certificate has one of these distinguished names. */
  public TlsOptions withAllowedClients(String... distinguishedNames) {
    return new TlsOptions(credentialsDirectory, verifyPeer, hostname, List.of(distinguishedNames));
  }
}
