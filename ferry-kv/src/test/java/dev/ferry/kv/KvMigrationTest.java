package dev.ferry.kv;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.FerryMachine;
import dev.ferry.api.Migration;
import dev.ferry.api.MigrationOptions;
import dev.ferry.api.MigrationStatus;
import dev.ferry.api.RunState;
import dev.ferry.api.StateDigest;
import dev.ferry.kv.store.KvState;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * The service migrates live in-process, through Ferry's API only: clients write while the source
 * is migrated; every write the source acknowledged is on the destination (a counter per client and
 * the keys each client set), the stopped source's digest equals the destination's before it runs,
 * and clients that get {@code READONLY} from the source reconnect to the destination and go on.
 */
class KvMigrationTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final long REGION = 16L << 20;
  private static final int CLIENTS = 4;

  @Test
  void migratesLiveUnderWritesAndEveryAcknowledgedWriteArrives() throws Exception {
    KvState srcState = new KvState(REGION);
    KvState dstState = new KvState(REGION);
    try (FerryMachine src = FerryKvGuest.configure(FerryMachine.builder(), REGION, srcState).build();
        FerryMachine dst = FerryKvGuest.configure(FerryMachine.builder(), REGION, dstState).build()) {
      KvServer srcServer = KvServer.start(FerryKvGuest.attach(src, srcState), new InetSocketAddress("127.0.0.1", 0), 2);
      KvServer dstServer = KvServer.start(FerryKvGuest.attach(dst, dstState), new InetSocketAddress("127.0.0.1", 0), 2);
      try {
        src.start();
        Migration in = dst.incoming("tcp:127.0.0.1:0", MigrationOptions.builder().autostart(false).build());
        String uri = in.listeningUri(WAIT);

        AtomicBoolean stop = new AtomicBoolean();
        List<CheckedWriter> writers = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
          CheckedWriter w = new CheckedWriter(i, srcServer.port(), dstServer.port(), stop, null);
          writers.add(w);
          threads.add(Thread.ofPlatform().name("writer-" + i).start(w));
        }
        for (CheckedWriter w : writers) {
          assertThat(w.warmedUp.await(60, TimeUnit.SECONDS)).isTrue();
          assertThat(w.failure).isNull();
        }

        Migration out = src.migrate(uri, MigrationOptions.builder().downtimeLimit(Duration.ofMillis(300)).build());
        assertThat(out.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(in.await(WAIT)).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(src.runState()).isEqualTo(RunState.POSTMIGRATE);
        assertThat(dst.runState()).isEqualTo(RunState.PAUSED);

        // exact: the stopped source against the destination before it runs
        StateDigest a = src.digest();
        StateDigest b = dst.digest();
        assertThat(a.firstDifference(b)).isEmpty();
        assertThat(a).isEqualTo(b);

        // the source's frozen keyspace holds exactly the writes it acknowledged
        long frozenKeys;
        try (RespTestClient c = new RespTestClient(srcServer.port())) {
          assertThat(c.callText("SET", "late", "x")).isEqualTo("-" + KvCommands.MIGRATED);
          String info = c.callText("INFO", "keyspace");
          frozenKeys = Long.parseLong(info.replaceAll("(?s).*db0:keys=(\\d+),.*", "$1"));
        }

        dst.start();
        // every client found the destination and wrote there too
        CheckedWriter.awaitWritingOnDestination(writers, System.nanoTime() + TimeUnit.SECONDS.toNanos(60));
        stop.set(true);
        for (Thread t : threads) {
          t.join(TimeUnit.SECONDS.toMillis(30));
        }
        long sourceKeys = 0;
        long total = 0;
        try (RespTestClient c = new RespTestClient(dstServer.port())) {
          for (CheckedWriter w : writers) {
            w.verifyOn(c);
            assertThat(w.setsOnSource).isGreaterThanOrEqualTo(200);
            sourceKeys += 1 + w.setsOnSource;
            total += 1 + w.acked.get();
          }
          assertThat(frozenKeys).isEqualTo(sourceKeys);
          assertThat(c.call("DBSIZE")).isEqualTo(total);
        }
      } finally {
        srcServer.close();
        dstServer.close();
      }
    }
  }
}
