package dev.ferry.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class KvServerTest {
  private FakeKvGuest guest;
  private KvServer server;

  @BeforeEach
  void start() throws IOException {
    guest = new FakeKvGuest(8 << 20);
    server = KvServer.start(guest, new InetSocketAddress("127.0.0.1", 0), 2);
  }

  @AfterEach
  void stop() throws IOException {
    server.close();
    guest.close();
  }

  private static List<String> texts(Object reply) {
    List<String> out = new java.util.ArrayList<>();
    for (Object o : (List<?>) reply) {
      out.add(RespTestClient.text(o));
    }
    return out;
  }

  /** {@code c.call(args)} on another thread. */
  private static CompletableFuture<Object> callAsync(RespTestClient c, Object... args) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return c.call(args);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  @Test
  void theCommandsAnswerAsRedis() throws IOException {
    try (RespTestClient c = new RespTestClient(server.port())) {
      assertThat(c.callText("PING")).isEqualTo("PONG");
      assertThat(c.callText("ping", "hi")).isEqualTo("hi");
      assertThat(c.callText("ECHO", "x y")).isEqualTo("x y");
      assertThat(c.callText("SET", "k", "v")).isEqualTo("OK");
      assertThat(c.callText("GET", "k")).isEqualTo("v");
      assertThat(c.call("GET", "nope")).isNull();
      assertThat(c.call("SET", "k", "w", "NX")).isNull();
      assertThat(c.callText("SET", "k", "w", "XX", "EX", "100")).isEqualTo("OK");
      assertThat(c.call("TTL", "k")).isEqualTo(100L);
      assertThat(c.callText("SET", "k", "w", "EX", "0")).isEqualTo("-ERR invalid expire time in 'set' command");
      assertThat(c.callText("SET", "k", "w", "NX", "XX")).isEqualTo("-ERR syntax error");
      assertThat(c.call("INCR", "n")).isEqualTo(1L);
      assertThat(c.call("INCRBY", "n", "41")).isEqualTo(42L);
      assertThat(c.callText("INCR", "k")).isEqualTo("-ERR value is not an integer or out of range");
      assertThat(c.callText("MSET", "a", "1", "b", "2")).isEqualTo("OK");
      assertThat(texts(c.call("MGET", "a", "zz", "b"))).containsExactly("1", null, "2");
      assertThat(c.call("EXISTS", "a", "b", "zz", "a")).isEqualTo(3L);
      assertThat(c.call("DEL", "a", "zz")).isEqualTo(1L);
      assertThat(c.call("DBSIZE")).isEqualTo(3L);
      assertThat(c.callText("INFO", "keyspace")).contains("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n");
      assertThat(c.callText("INFO")).contains("redis_version:", "ferry_run_state:running", "total_commands_processed:");
      assertThat(texts(c.call("CONFIG", "GET", "save"))).containsExactly("save", "");
      assertThat(texts(c.call("CONFIG", "GET", "appendonly"))).containsExactly("appendonly", "no");
      assertThat(texts(c.call("COMMAND", "DOCS"))).isEmpty();
      assertThat(c.callText("SELECT", "0")).isEqualTo("OK");
      assertThat(c.callText("SELECT", "1")).isEqualTo("-ERR DB index is out of range");
      assertThat(c.callText("GET")).isEqualTo("-ERR wrong number of arguments for 'get' command");
      assertThat(c.callText("NOSUCH", "a")).isEqualTo("-ERR unknown command 'NOSUCH', with args beginning with: 'a' ");
      assertThat(c.callText("FLUSHALL")).isEqualTo("OK");
      assertThat(c.call("DBSIZE")).isEqualTo(0L);
      assertThat(c.callText("INFO", "keyspace")).isEqualTo("# Keyspace\r\n");
      assertThat(c.callText("QUIT")).isEqualTo("OK");
    }
  }

  @Test
  void pipelinedAndInlineRequestsGetTheirRepliesInOrder() throws IOException {
    try (RespTestClient c = new RespTestClient(server.port())) {
      StringBuilder b = new StringBuilder();
      for (int i = 0; i < 1000; i++) {
        b.append("*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
        if (i % 100 == 0) {
          b.append("PING\r\n");
        }
      }
      c.sendRaw(b.toString().getBytes(StandardCharsets.US_ASCII));
      for (int i = 0; i < 1000; i++) {
        assertThat(c.read()).isEqualTo(i + 1L);
        if (i % 100 == 0) {
          assertThat(c.read()).isEqualTo("PONG");
        }
      }
    }
  }

  @Test
  void badInputGetsAClearErrorAndNeitherConnectionNorServerDies() throws IOException {
    try (RespTestClient c = new RespTestClient(server.port())) {
      byte[] key = {0, '\r', '\n', (byte) 0xff, '"'};
      assertThat(c.callText("SET", key, "binary")).isEqualTo("OK");
      assertThat(c.callText("GET", key)).isEqualTo("binary");
      // over-long bulk string: refused before its payload arrives, which is then skipped
      c.sendRaw("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n".getBytes(StandardCharsets.US_ASCII));
      assertThat(RespTestClient.text(c.read())).isEqualTo("-ERR Protocol error: invalid bulk length");
      RespTestClient c2 = new RespTestClient(server.port()); // the server still serves others meanwhile
      assertThat(c2.callText("PING")).isEqualTo("PONG");
      c2.close();
    }
    try (RespTestClient c = new RespTestClient(server.port())) {
      c.sendRaw("*2\r\n$3\r\nGET\r\n$-7\r\nkey\r\n*1\r\n$4\r\nPING\r\n".getBytes(StandardCharsets.US_ASCII));
      assertThat(RespTestClient.text(c.read())).isEqualTo("-ERR Protocol error: invalid bulk length");
      assertThat(c.read()).isEqualTo("PONG");
      // a key whose bytes are not what its length says
      c.sendRaw("*2\r\n$3\r\nGET\r\n$2\r\nkey\r\n*1\r\n$4\r\nPING\r\n".getBytes(StandardCharsets.US_ASCII));
      assertThat(RespTestClient.text(c.read())).startsWith("-ERR Protocol error: bulk string of 2 bytes not followed by CRLF");
      assertThat(c.read()).isEqualTo("PONG");
      c.sendRaw("SET \"k\r\nPING\r\n".getBytes(StandardCharsets.US_ASCII));
      assertThat(RespTestClient.text(c.read())).isEqualTo("-ERR Protocol error: unbalanced quotes in request");
      assertThat(c.read()).isEqualTo("PONG");
      assertThat(c.callText("GET", new byte[] {0, '\r', '\n', (byte) 0xff, '"'})).isEqualTo("binary");
    }
  }

  @Test
  void commandsWaitWhileStoppedAndAreRefusedOnceTheKeyspaceMovedAway() throws Exception {
    try (RespTestClient c = new RespTestClient(server.port())) {
      assertThat(c.call("INCR", "n")).isEqualTo(1L);
      guest.stop();
      CompletableFuture<Object> pending = callAsync(c, "INCR", "n");
      // a worker took the job and waits for a step: nothing ran, the state is what a save would capture
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (server.stepWaits() == 0 && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
      assertThat(server.stepWaits()).isPositive();
      assertThat(pending).isNotDone();
      assertThat(guest.state().commandsProcessed).isEqualTo(1);
      guest.resume();
      assertThat(pending.get(10, TimeUnit.SECONDS)).isEqualTo(2L);

      guest.stop();
      CompletableFuture<Object> refused = callAsync(c, "INCR", "n");
      guest.migrateAway();
      assertThat(RespTestClient.text(refused.get(10, TimeUnit.SECONDS))).isEqualTo("-" + KvCommands.MIGRATED);
      assertThat(c.callText("GET", "n")).isEqualTo("-" + KvCommands.MIGRATED);
      assertThat(c.callText("INFO", "keyspace")).contains("db0:keys=1,");
      assertThat(c.callText("PING")).isEqualTo("PONG");
      assertThat(guest.state().commandsProcessed).isEqualTo(2);
    }
  }
}
