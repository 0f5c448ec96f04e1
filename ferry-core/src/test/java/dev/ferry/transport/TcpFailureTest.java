package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ServerSocketChannel;
import java.util.ArrayList;
import java.util.List;
import jdk.net.ExtendedSocketOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 8 item 7: a tcp connect that gets no answer fails in bounded time naming the address, and
 * every tcp migration connection has keepalive on, so a dead peer is noticed by a blocked read.
 */
@Timeout(60)
class TcpFailureTest {

  @Test
  void aConnectThatGetsNoAnswerFailsInBoundedTimeNamingTheAddress() throws Exception {
    // a listener that never accepts, with its accept queue full: the kernel drops further SYNs,
    // as a host behind a firewall that drops packets does
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 1);
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      MigrationUri.Tcp uri = new MigrationUri.Tcp("127.0.0.1", port);
      List<MigrationChannel> fillers = new ArrayList<>();
      IOException timedOut = null;
      try {
        for (int i = 0; i < 16 && timedOut == null; i++) {
          try {
            fillers.add(Transports.connectTcp(uri, 300));
          } catch (IOException e) {
            timedOut = e;
          }
        }
      } finally {
        for (MigrationChannel c : fillers) {
          c.close();
        }
      }
      assertThat(timedOut).as("a connect into a full accept queue").isNotNull();
      assertThat(timedOut).hasMessage("tcp:127.0.0.1:" + port + ": cannot connect: no answer within 300 ms");
    }
  }

  @Test
  void bothEndsOfATcpMigrationConnectionHaveKeepalive() throws Exception {
    try (TransportListener l = Transports.listen("tcp:127.0.0.1:0");
        MigrationChannel out = Transports.connect(l.boundUri().text());
        MigrationChannel in = l.accept()) {
      for (MigrationChannel c : List.of(out, in)) {
        var ch = ((SocketMigrationChannel) c).ch;
        assertThat(ch.getOption(StandardSocketOptions.SO_KEEPALIVE)).as(c.peerDescription()).isTrue();
        assertThat(ch.getOption(ExtendedSocketOptions.TCP_KEEPIDLE)).isEqualTo(Transports.KEEPALIVE_IDLE_S);
        assertThat(ch.getOption(ExtendedSocketOptions.TCP_KEEPINTERVAL)).isEqualTo(Transports.KEEPALIVE_INTERVAL_S);
        assertThat(ch.getOption(ExtendedSocketOptions.TCP_KEEPCOUNT)).isEqualTo(Transports.KEEPALIVE_COUNT);
      }
    }
  }
}
