package dev.ferry.transport;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;

class TcpV4TransportTest extends BaseTransportTestCase {
  @Override
  protected String listenUri() {
    return "tcp:127.0.0.1:0";
  }

  @Override
  protected boolean supportsReturnPath() {
    return true;
  }

  /** A port that was free a moment ago: connecting is refused. */
  static int closedPort(InetAddress host) throws IOException {
    try (ServerSocketChannel s = ServerSocketChannel.open()) {
      s.bind(new InetSocketAddress(host, 0));
      return ((InetSocketAddress) s.getLocalAddress()).getPort();
    }
  }

  @Override
  protected String unreachableConnectUri() throws IOException {
    return "tcp:127.0.0.1:" + closedPort(InetAddress.getByName("127.0.0.1"));
  }
}
