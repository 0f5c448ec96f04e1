package dev.ferry.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.TruncatedStreamException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The conformance suite every transport passes (Lucene's BaseDirectoryTestCase shape): a subclass
 * says how to listen and connect, and which properties its transport has; the tests here check
 * that bytes arrive intact in bulk and one small message at a time, the return path, a peer that
 * goes away mid-stream, {@link MigrationChannel#shutdown()} from another thread, and the error for
 * an endpoint that cannot be reached.
 *
 * <p>Timeouts are hang guards only; nothing here measures time.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
public abstract class BaseTransportTestCase {
  static final long SEED = Long.getLong("ferry.seed", System.nanoTime());

  @TempDir protected Path tmp;

  protected final ExecutorService pool = Executors.newCachedThreadPool();

  /** The URI the incoming side listens on. */
  protected abstract String listenUri() throws IOException;

  /** The URI the outgoing side connects to, given what the listener reports. */
  protected String connectUri(MigrationUri bound) {
    return bound.text();
  }

  /** True when the transport carries a return path. */
  protected abstract boolean supportsReturnPath();

  /** False for file: the writer finishes before the reader opens. */
  protected boolean streaming() {
    return true;
  }

  /** A URI whose opening (connect, then a write and close) must fail, naming the URI. */
  protected abstract String unreachableConnectUri() throws IOException;

  /** Opens the sending side (a layer such as TLS wraps it here). */
  protected MigrationChannel connect(String uri) throws IOException {
    return Transports.connect(uri);
  }

  /** Takes the receiving side from the listener (a layer such as TLS wraps it here). */
  protected MigrationChannel accept(TransportListener l) throws IOException {
    return l.accept();
  }

  /** What the sending side does with its channel. */
  @FunctionalInterface
  protected interface Body<T> {
    T run(MigrationChannel ch) throws Exception;
  }

  @AfterEach
  void stopPool() throws InterruptedException {
    pool.shutdownNow();
    assertThat(pool.awaitTermination(30, TimeUnit.SECONDS)).as("helper threads ended").isTrue();
  }

  /**
   * Opens both ends and runs {@code sender} (in a helper thread; it owns and closes its channel) and
   * {@code receiver} (in this thread, the channel closed afterwards); returns both results.
   */
  protected <S, R> Results<S, R> exchange(Body<S> sender, Body<R> receiver) throws Exception {
    if (!streaming()) {
      S s;
      String uri = listenUri();
      try (MigrationChannel ch = connect(connectUri(MigrationUri.parse(uri)))) {
        s = sender.run(ch);
      }
      try (TransportListener l = Transports.listen(uri);
          MigrationChannel ch = accept(l)) {
        return new Results<>(s, receiver.run(ch));
      }
    }
    try (TransportListener l = Transports.listen(listenUri())) {
      String target = connectUri(l.boundUri());
      Future<S> f =
          pool.submit(
              () -> {
                try (MigrationChannel ch = connect(target)) {
                  return sender.run(ch);
                }
              });
      R r;
      try (MigrationChannel ch = accept(l)) {
        r = receiver.run(ch);
      } catch (Exception | Error e) {
        f.cancel(true);
        throw e;
      }
      try {
        return new Results<>(f.get(), r);
      } catch (ExecutionException e) {
        throw e.getCause() instanceof Exception ex ? ex : e;
      }
    }
  }

  protected record Results<S, R>(S sent, R received) {}

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void bulkStreamArrivesIntact() throws Exception {
    long seed = SEED;
    System.out.println(getClass().getSimpleName() + " seed " + seed + " (-Dferry.seed=" + seed + ")");
    final int chunk = 1 << 20;
    final int chunks = 64;
    Results<String, String> r =
        exchange(
            ch -> {
              MessageDigest md = sha256();
              Random rnd = new Random(seed);
              byte[] heap = new byte[chunk];
              ByteBuffer direct = ByteBuffer.allocateDirect(chunk + 4096).alignedSlice(4096);
              MigrationOutput out = new MigrationOutput(ch);
              out.writeBe64((long) chunk * chunks);
              for (int i = 0; i < chunks; i++) {
                rnd.nextBytes(heap);
                md.update(heap);
                if (i % 2 == 0) {
                  // pages by reference, gathered (the RAM path)
                  direct.clear().put(heap).flip();
                  for (int p = 0; p < chunk; p += 4096) {
                    out.writePage(direct.slice(p, 4096));
                  }
                  out.flush(); // the page buffer is reused next round
                } else {
                  out.writeBytes(heap);
                }
              }
              out.flush();
              return HexFormat.of().formatHex(md.digest());
            },
            ch -> {
              MessageDigest md = sha256();
              MigrationInput in = new MigrationInput(ch);
              long len = in.readBe64();
              assertThat(len).isEqualTo((long) chunk * chunks);
              ByteBuffer buf = ByteBuffer.allocateDirect(chunk);
              Random sizes = new Random(seed);
              while (len > 0) {
                int n = (int) Math.min(len, 1 + sizes.nextInt(chunk));
                buf.clear().limit(n);
                in.readFully(buf);
                buf.flip();
                md.update(buf);
                len -= n;
              }
              assertThat(in.atEnd()).as("nothing after the stream").isTrue();
              return HexFormat.of().formatHex(md.digest());
            });
    assertThat(r.received()).isEqualTo(r.sent());
  }

  @Test
  void smallMessagesArriveOneAtATime() throws Exception {
    final int count = 500;
    boolean rp = supportsReturnPath();
    Results<Integer, Integer> r =
        exchange(
            ch -> {
              MigrationOutput out = new MigrationOutput(ch);
              MigrationInput acks = rp ? new MigrationInput(ch) : null;
              for (int i = 0; i < count; i++) {
                out.writeBe32(i).writeCountedString("message " + i).flush();
                if (rp) {
                  // the next message is only sent once this one arrived: nothing may sit in a buffer
                  assertThat(acks.readBe32()).isEqualTo(i);
                }
              }
              out.writeBe32(-1).flush();
              return count;
            },
            ch -> {
              MigrationInput in = new MigrationInput(ch);
              MigrationOutput acks = rp ? new MigrationOutput(ch) : null;
              int seen = 0;
              for (int v; (v = in.readBe32()) != -1; seen++) {
                assertThat(v).isEqualTo(seen);
                assertThat(in.readCountedString()).isEqualTo("message " + v);
                if (rp) {
                  acks.writeBe32(v).flush();
                }
              }
              return seen;
            });
    assertThat(r.received()).isEqualTo(count);
  }

  @Test
  void returnPathCarriesMessagesWhileTheStreamFlows() throws Exception {
    if (!supportsReturnPath()) {
      exchange(
          ch -> {
            assertThat(ch.supportsReturnPath()).as("outgoing supportsReturnPath").isFalse();
            return null;
          },
          ch -> {
            assertThat(ch.supportsReturnPath()).as("incoming supportsReturnPath").isFalse();
            return null;
          });
      return;
    }
    final int mainBytes = 16 << 20;
    final int rpMessages = 2000;
    Results<Long, Long> r =
        exchange(
            ch -> {
              assertThat(ch.supportsReturnPath()).isTrue();
              // source: a return-path reader thread while this thread streams
              Future<Long> rpReader =
                  pool.submit(
                      () -> {
                        MigrationInput rpIn = new MigrationInput(ch);
                        long sum = 0;
                        for (int i = 0; i < rpMessages; i++) {
                          int type = rpIn.readBe16();
                          int len = rpIn.readBe16();
                          assertThat(type).isEqualTo(2); // PONG
                          assertThat(len).isEqualTo(4);
                          sum += rpIn.readBe32();
                        }
                        return sum;
                      });
              MigrationOutput out = new MigrationOutput(ch);
              byte[] block = new byte[64 * 1024];
              for (int sent = 0; sent < mainBytes; sent += block.length) {
                out.writeBytes(block);
              }
              out.flush();
              return rpReader.get(60, TimeUnit.SECONDS);
            },
            ch -> {
              assertThat(ch.supportsReturnPath()).isTrue();
              // destination: writes PONGs while the main stream is still arriving
              Future<Long> rpWriter =
                  pool.submit(
                      () -> {
                        MigrationOutput rpOut = new MigrationOutput(ch);
                        long sum = 0;
                        for (int i = 0; i < rpMessages; i++) {
                          rpOut.writeBe16(2).writeBe16(4).writeBe32(i).flush();
                          sum += i;
                        }
                        return sum;
                      });
              MigrationInput in = new MigrationInput(ch);
              in.skip(mainBytes);
              long sum = rpWriter.get(60, TimeUnit.SECONDS);
              // keep the channel open until the source has read every PONG
              assertThat(in.atEnd()).isTrue();
              return sum;
            });
    assertThat(r.sent()).isEqualTo(r.received());
  }

  @Test
  void peerGoneMidStreamIsATruncatedStream() throws Exception {
    final int declared = 1 << 20;
    Results<Object, TruncatedStreamException> r =
        exchange(
            ch -> {
              MigrationOutput out = new MigrationOutput(ch);
              out.writeBe64(declared).writeBytes(new byte[declared / 10]).flush();
              return null; // exchange closes the channel: the peer is gone
            },
            ch -> {
              MigrationInput in = new MigrationInput(ch);
              int len = (int) in.readBe64();
              return catchThrowableOfType(
                  TruncatedStreamException.class, () -> in.readFully(ByteBuffer.allocate(len)));
            });
    assertThat(r.received()).as("truncation reported").isNotNull();
    assertThat(r.received().offset()).isEqualTo(8 + declared / 10);
  }

  @Test
  void shutdownUnblocksABlockedReader() throws Exception {
    assumeTrue(streaming(), "reading a file never waits for a peer");
    CountDownLatch done = new CountDownLatch(1);
    Results<Object, Throwable> r =
        exchange(
            ch -> {
              done.await(); // connected, silent until the reader was stopped
              return null;
            },
            ch -> {
              MigrationInput in = new MigrationInput(ch);
              Future<Throwable> reader =
                  pool.submit(() -> catchThrowableOfType(IOException.class, in::readBe32));
              // Give the reader time to block (correctness does not depend on it).
              Thread.sleep(200);
              ch.shutdown();
              Throwable t = reader.get(30, TimeUnit.SECONDS);
              done.countDown();
              return t;
            });
    assertThat(r.received())
        .isInstanceOf(MigrationStreamException.class)
        .hasRootCauseInstanceOf(ChannelShutdownException.class);
  }

  @Test
  void shutdownUnblocksABlockedWriter() throws Exception {
    assumeTrue(streaming(), "writing a file never waits for a peer");
    CountDownLatch done = new CountDownLatch(1);
    Results<Throwable, Object> r =
        exchange(
            ch -> {
              Future<Throwable> writer =
                  pool.submit(
                      () ->
                          catchThrowableOfType(
                              IOException.class,
                              () -> {
                                ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
                                for (long sent = 0; sent < (4L << 30); ) {
                                  b.clear();
                                  sent += ch.write(b); // nobody reads: blocks once buffers fill
                                }
                              }));
              Thread.sleep(200);
              ch.shutdown();
              Throwable t = writer.get(30, TimeUnit.SECONDS);
              done.countDown();
              return t;
            },
            ch -> {
              done.await(); // never reads
              return null;
            });
    assertThat(r.sent()).isInstanceOf(ChannelShutdownException.class);
  }

  @Test
  void readAndWriteAfterShutdownFail() throws Exception {
    exchange(
        ch -> {
          ch.shutdown();
          ch.shutdown(); // idempotent
          assertThat(ch.isShutdown()).isTrue();
          assertThat(catchThrowableOfType(IOException.class, () -> ch.write(ByteBuffer.allocate(1))))
              .isInstanceOf(ChannelShutdownException.class)
              .hasMessageContaining("shut down");
          return null;
        },
        ch -> {
          ch.shutdown();
          assertThat(catchThrowableOfType(IOException.class, () -> ch.read(ByteBuffer.allocate(1))))
              .isInstanceOf(ChannelShutdownException.class);
          return null;
        });
  }

  @Test
  void unreachableEndpointIsAOneLineErrorNamingTheUri() throws Exception {
    String uri = unreachableConnectUri();
    IOException e =
        catchThrowableOfType(
            IOException.class,
            () -> {
              try (MigrationChannel ch = Transports.connect(uri)) {
                ch.write(ByteBuffer.wrap(new byte[16]));
              }
            });
    assertThat(e).as("opening %s fails", uri).isNotNull();
    assertThat(e.getMessage()).startsWith(uri).doesNotContain("\n");
  }

  @Test
  void badUriIsAOneLineError() {
    assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> Transports.connect("foo:bar")))
        .hasMessage(
            "unknown transport 'foo' in 'foo:bar'; expected tcp:, unix:, exec:, fd: or file:");
  }
}
