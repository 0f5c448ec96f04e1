package dev.ferry.cli.soak;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(60)
class CutProxyTest {
  /** A destination that reads everything until EOF or an error, then answers with a few bytes. */
  private static CompletableFuture<byte[]> destination(ServerSocketChannel server) {
    CompletableFuture<byte[]> got = new CompletableFuture<>();
    Thread.ofPlatform().daemon().start(() -> {
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      try (SocketChannel c = server.accept()) {
        c.write(ByteBuffer.wrap(new byte[] {'S', 'H', 'U', 'T'}));
        ByteBuffer b = ByteBuffer.allocate(8192);
        try {
          while (c.read(b.clear()) >= 0) {
            all.write(b.array(), 0, b.position());
          }
        } catch (IOException e) {
          // the cut: what arrived is what counts
        }
        got.complete(all.toByteArray());
      } catch (IOException e) {
        got.completeExceptionally(e);
      }
    });
    return got;
  }

  private static byte[] data(int n) {
    byte[] d = new byte[n];
    new Random(n).nextBytes(d);
    return d;
  }

  @Test
  void cutsAfterExactlyTheSetByteCountAndPassesTheReturnPath(@TempDir Path dir) throws Exception {
    try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      CompletableFuture<byte[]> got = destination(server);
      byte[] stream = data(1 << 20);
      try (CutProxy p = CutProxy.start("tcp:127.0.0.1:" + port, dir.resolve("unused.sock"), 300_001);
          SocketChannel src = SocketChannel.open(new InetSocketAddress("127.0.0.1", Integer.parseInt(p.listenUri().split(":")[2])))) {
        ByteBuffer rp = ByteBuffer.allocate(4);
        while (rp.hasRemaining()) {
          assertThat(src.read(rp)).isNotNegative();
        }
        assertThat(new String(rp.array(), java.nio.charset.StandardCharsets.US_ASCII)).isEqualTo("SHUT");
        boolean noticed;
        try {
          ByteBuffer b = ByteBuffer.wrap(stream);
          while (b.hasRemaining()) {
            src.write(b);
          }
          // the cut may come after the last write was buffered: then the source sees EOF on its return path
          noticed = src.read(ByteBuffer.allocate(1)) == -1;
        } catch (IOException e) {
          noticed = true; // reset by the proxy
        }
        assertThat(noticed).as("the source notices the cut").isTrue();
        byte[] d = got.get(30, TimeUnit.SECONDS);
        assertThat(d).hasSize(300_001).isEqualTo(java.util.Arrays.copyOf(stream, 300_001));
        assertThat(p.cut()).isTrue();
        assertThat(p.sourceEof()).isFalse();
        assertThat(p.forwardedBytes()).isEqualTo(300_001);
        assertThat(p.returnedBytes()).isEqualTo(4);
      }
    }
  }

  @Test
  void aStreamShorterThanTheCutGoesThroughWholeOverUnix(@TempDir Path dir) throws Exception {
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
        .bind(UnixDomainSocketAddress.of(dir.resolve("dst.sock")))) {
      CompletableFuture<byte[]> got = destination(server);
      byte[] stream = data(100_000);
      try (CutProxy p = CutProxy.start("unix:" + dir.resolve("dst.sock"), dir.resolve("proxy.sock"), 1 << 20);
          SocketChannel src = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("proxy.sock")))) {
        assertThat(p.listenUri()).isEqualTo("unix:" + dir.resolve("proxy.sock"));
        ByteBuffer b = ByteBuffer.wrap(stream);
        while (b.hasRemaining()) {
          src.write(b);
        }
        src.shutdownOutput();
        assertThat(got.get(30, TimeUnit.SECONDS)).isEqualTo(stream);
        assertThat(p.cut()).isFalse();
        assertThat(p.sourceEof()).isTrue();
        assertThat(p.forwardedBytes()).isEqualTo(stream.length);
      }
    }
  }
}
