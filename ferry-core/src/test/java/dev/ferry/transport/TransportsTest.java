package dev.ferry.transport;

import dev.ferry.libc.LibC;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.ferry.stream.MigrationInput;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Behaviour specific to one transport (the shared behaviour is in BaseTransportTestCase). */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TransportsTest {
  @TempDir Path tmp;
  private final ExecutorService pool = Executors.newCachedThreadPool();

  @AfterEach
  void stop() {
    pool.shutdownNow();
  }

  @Test
  void tcpPortZeroReportsTheBoundPort() throws IOException {
    try (TransportListener l = Transports.listen("tcp:127.0.0.1:0")) {
      MigrationUri.Tcp bound = (MigrationUri.Tcp) l.boundUri();
      assertThat(bound.host()).isEqualTo("127.0.0.1");
      assertThat(bound.port()).isPositive();
    }
  }

  @Test
  void tcpWildcardAndLocalhostListenersReportAConnectableAddress() throws Exception {
    for (String uri : new String[] {"tcp::0", "tcp:localhost:0"}) {
      try (TransportListener l = Transports.listen(uri)) {
        Future<MigrationChannel> accepted = pool.submit(l::accept);
        try (MigrationChannel out = Transports.connect(l.boundUri());
            MigrationChannel in = accepted.get(30, TimeUnit.SECONDS)) {
          out.write(ByteBuffer.wrap(new byte[] {42}));
          ByteBuffer b = ByteBuffer.allocate(1);
          assertThat(in.read(b)).isEqualTo(1);
          assertThat(b.get(0)).isEqualTo((byte) 42);
          assertThat(in.peerDescription()).startsWith("tcp:");
        }
      }
    }
  }

  @Test
  void closingAListenerUnblocksAccept() throws Exception {
    try (TransportListener l = Transports.listen("tcp:127.0.0.1:0")) {
      Future<Throwable> acceptor = pool.submit(() -> catchThrowableOfType(IOException.class, l::accept));
      Thread.sleep(100);
      l.close();
      assertThat(acceptor.get(30, TimeUnit.SECONDS)).isInstanceOf(AsynchronousCloseException.class);
    }
  }

  @Test
  void interruptedAcceptThrowsClosedByInterrupt() throws Exception {
    try (TransportListener l = Transports.listen("tcp:127.0.0.1:0")) {
      Thread.currentThread().interrupt();
      assertThatThrownBy(l::accept).isInstanceOf(ClosedByInterruptException.class);
      assertThat(Thread.interrupted()).isTrue();
    }
  }

  @Test
  void unixListenRemovesAStaleSocketAndCloseRemovesItsOwn() throws IOException {
    Path p = tmp.resolve("stale.sock");
    ServerSocketChannel old = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    old.bind(UnixDomainSocketAddress.of(p));
    old.close(); // leaves the socket file behind, as a crashed process would
    assertThat(p).exists();
    try (TransportListener l = Transports.listen("unix:" + p)) {
      assertThat(l.boundUri().text()).isEqualTo("unix:" + p);
    }
    assertThat(p).doesNotExist();
  }

  @Test
  void unixListenRefusesToReplaceARegularFile() throws IOException {
    Path p = tmp.resolve("precious.txt");
    Files.writeString(p, "keep me");
    assertThatThrownBy(() -> Transports.listen("unix:" + p))
        .hasMessage("unix:" + p + ": cannot listen: the path exists and is not a socket");
    assertThat(p).hasContent("keep me");
  }

  @Test
  void execIncomingReportsTheExitCodeAndStderr() throws IOException {
    String uri = "exec:printf partial; echo 'disk on fire' >&2; exit 7";
    try (TransportListener l = Transports.listen(uri);
        MigrationChannel ch = l.accept()) {
      MigrationInput in = new MigrationInput(ch);
      assertThat(in.readU8()).isEqualTo('p');
      IOException e = catchThrowableOfType(IOException.class, () -> in.readBytes(100));
      assertThat(e.getCause())
          .hasMessage(uri + ": command exited with code 7: disk on fire");
    }
  }

  @Test
  void execOutgoingReportsTheExitCodeOnClose() throws IOException {
    String uri = "exec:cat > /dev/null; echo 'upload failed' >&2; exit 5";
    MigrationChannel ch = Transports.connect(uri);
    ch.write(ByteBuffer.wrap(new byte[1000]));
    assertThatThrownBy(ch::close).hasMessage(uri + ": command exited with code 5: upload failed");
  }

  @Test
  void execOutgoingWriteToADeadChildReportsItsExit() throws Exception {
    String uri = "exec:echo 'no space' >&2; exit 4";
    IOException e;
    try (MigrationChannel ch = Transports.connect(uri)) {
      e =
          catchThrowableOfType(
              IOException.class,
              () -> {
                ByteBuffer b = ByteBuffer.allocate(1 << 20);
                for (int i = 0; i < 64; i++) {
                  b.clear();
                  ch.write(b);
                }
              });
    } catch (IOException closeError) {
      e = closeError; // the child may exit before the first write fails
    }
    assertThat(e).hasMessage(uri + ": command exited with code 4: no space");
  }

  @Test
  void execHasNoReturnPathAndIsOneWay() throws IOException {
    try (MigrationChannel ch = Transports.connect("exec:cat > /dev/null")) {
      assertThat(ch.supportsReturnPath()).isFalse();
      assertThatThrownBy(() -> ch.read(ByteBuffer.allocate(1)))
          .isInstanceOf(java.nio.channels.NonReadableChannelException.class);
    }
  }

  @Test
  void fileOutgoingTruncatesAndIncomingReadsBack() throws IOException {
    Path p = tmp.resolve("snap.mig");
    Files.write(p, new byte[10_000]);
    try (MigrationChannel ch = Transports.connect("file:" + p)) {
      ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
    }
    assertThat(p).hasBinaryContent(new byte[] {1, 2, 3});
    try (TransportListener l = Transports.listen("file:" + p)) {
      assertThat(l.boundUri().text()).isEqualTo("file:" + p);
      MigrationChannel ch = l.accept();
      assertThatThrownBy(l::accept).isInstanceOf(IllegalStateException.class);
      ch.close();
    }
  }

  @Test
  void missingFileIsAOneLineErrorNamingTheUri() {
    Path p = tmp.resolve("missing.mig");
    assertThatThrownBy(() -> Transports.listen("file:" + p))
        .hasMessage("file:" + p + ": cannot open: no such file or directory");
  }

  @Test
  void unknownHostNamesTheUri() {
    assertThatThrownBy(() -> Transports.connect("tcp:no-such-host.invalid:4444"))
        .hasMessageStartingWith("tcp:no-such-host.invalid:4444: cannot resolve host");
  }

  @Test
  void fdOfASocketCarriesAReturnPathAndOfAPipeNot() throws IOException {
    int[] pair = InheritedFds.socketPair();
    try (MigrationChannel a = Transports.connect("fd:" + pair[0]);
        MigrationChannel b = Transports.connect("fd:" + pair[1])) {
      assertThat(a.supportsReturnPath()).isTrue();
      assertThat(b.supportsReturnPath()).isTrue();
    }
    int[] pipe = InheritedFds.pipe();
    try (MigrationChannel r = Transports.connect("fd:" + pipe[0]);
        MigrationChannel w = Transports.connect("fd:" + pipe[1])) {
      assertThat(r.supportsReturnPath()).isFalse();
      assertThat(w.supportsReturnPath()).isFalse();
    }
  }

  @Test
  void fdOfARegularFileReadsIt() throws IOException {
    Path p = tmp.resolve("data");
    Files.write(p, new byte[] {9, 8, 7});
    int fd;
    try (Arena a = Arena.ofConfined()) {
      fd = LibC.open(a.allocateFrom(p.toString()), LibC.O_CLOEXEC); // O_RDONLY, as 3<file gives
    }
    assertThat(fd).isNotNegative();
    // a descriptor number alone is not enough: it must have been given for migration
    int n = fd;
    assertThatThrownBy(() -> Transports.listen("fd:" + n))
        .hasMessageStartingWith("fd:" + fd + ": descriptor " + fd + " was not given to this process for migration");
    MigrationFds.allowInherited(fd);
    try (TransportListener l = Transports.listen("fd:" + fd);
        MigrationChannel ch = l.accept()) {
      assertThat(ch.supportsReturnPath()).isFalse();
      ByteBuffer b = ByteBuffer.allocate(10);
      assertThat(ch.read(b)).isEqualTo(3);
      assertThat(ch.read(b)).isEqualTo(-1);
    }
  }

  @Test
  void rawCopyFromRegionToRegionCarriesTheBytesInOrderAndWrapsAtTheRegionEnd() throws Exception {
    long seed = 12;
    System.out.println("rawCopyFromRegionToRegion seed " + seed);
    long size = (3 << 20) + 4096 + 17; // not a multiple of the 1 MiB chunk
    try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
      java.lang.foreign.MemorySegment from = arena.allocate(size);
      byte[] noise = new byte[(int) size];
      new java.util.Random(seed).nextBytes(noise);
      java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(noise), 0, from, 0, size);
      for (String uri : new String[] {"tcp:127.0.0.1:0", "unix:" + tmp.resolve("raw2.sock")}) {
        // shorter than the region: only the first bytes arrive, the rest stays as it was
        java.lang.foreign.MemorySegment to = arena.allocate(size);
        RawCopy.Result r = RawCopy.measure(uri, (1 << 20) + 5, from, to);
        assertThat(r.bytes()).isEqualTo((1 << 20) + 5);
        assertThat(to.asSlice(0, (1 << 20) + 5).mismatch(from.asSlice(0, (1 << 20) + 5))).isEqualTo(-1);
        assertThat(to.get(java.lang.foreign.ValueLayout.JAVA_BYTE, (1 << 20) + 5)).isZero();
        // longer than the region (a stream is longer than the RAM it carries): around again from the start
        to.fill((byte) 0);
        RawCopy.measure(uri, 2 * size + 123, from, to);
        assertThat(to.mismatch(from)).isEqualTo(-1);
      }
    }
  }

  @Test
  void rawCopyMovesEveryByte() throws Exception {
    for (String uri : new String[] {"tcp:127.0.0.1:0", "unix:" + tmp.resolve("raw.sock")}) {
      RawCopy.Result r = RawCopy.measure(uri, (8 << 20) + 123);
      assertThat(r.bytes()).isEqualTo((8 << 20) + 123);
      assertThat(r.elapsedNs()).isPositive();
    }
  }
}
