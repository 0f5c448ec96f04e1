package dev.ferry.transport;

import java.io.IOException;

/**
 * A TLS handshake that did not complete, with a one-line reason that names the peer and what was
 * wrong ({@code TLS handshake with tcp:127.0.0.1:4444 failed: the server's certificate
 * 'CN=dst.example.com' does not match hostname 'other.example.com'}). No application byte has been
 * exchanged when it is thrown; the channel under it is closed.
 */
public final class TlsHandshakeException extends IOException {
  private static final long serialVersionUID = 1L;

  public TlsHandshakeException(String message, Throwable cause) {
    super(message, cause);
  }
}
