package dev.ferry.transport;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import org.junit.jupiter.api.BeforeAll;

/** Runs only where the loopback interface has {@code ::1}. */
class TcpV6TransportTest extends BaseTransportTestCase {
  @BeforeAll
  static void requireIpv6() {
    boolean ok;
    try (ServerSocketChannel s = ServerSocketChannel.open()) {
      s.bind(new InetSocketAddress(InetAddress.getByName("::1"), 0));
      ok = true;
    } catch (IOException | UnsupportedOperationException e) {
      ok = false;
    }
    assumeTrue(ok, "no IPv6 loopback here");
  }

  @Override
  protected String listenUri() {
    return "tcp:[::1]:0";
  }

  @Override
  protected boolean supportsReturnPath() {
    return true;
  }

  @Override
  protected String unreachableConnectUri() throws IOException {
    return "tcp:[::1]:" + TcpV4TransportTest.closedPort(InetAddress.getByName("::1"));
  }
}
