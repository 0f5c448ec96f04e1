package dev.ferry.bench;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.migration.PostcopyIncoming;
import dev.ferry.qmp.Sizes;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.TransportListener;
import dev.ferry.transport.Transports;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Postcopy recovery figure (issue 10): a running {@code stress} guest migrated in postcopy to a
 * held destination in the same JVM over a unix or tcp socket, paused by {@code migrate-pause} on
 * the source a moment after the switch, recovered ({@code migrate-recover} on the destination,
 * {@code migrate resume=true} on the source), and completed; it prints the time from the resume
 * request to the source's {@code postcopy-active} (the handshake: connect, RECV_BITMAP per block and
 * the received bitmaps, POSTCOPY_RESUME, RESUME_ACK) and to completion, per repeat and the median.
 * Every run must end with the stopped source's digest equal to the destination's (exit code 1
 * otherwise).
 *
 * <pre>{@code java -cp ferry-bench.jar:lib/* dev.ferry.bench.RecoveryBench [--size 256M] [--transport unix|tcp] [--repeats 5]}</pre>
 */
public final class RecoveryBench {
  private RecoveryBench() {}

  public static void main(String[] args) throws Exception {
    long size = 256L << 20;
    String transport = "unix";
    int repeats = 5;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--size" -> size = Sizes.parse(args[++i], 'B');
        case "--transport" -> transport = args[++i];
        case "--repeats" -> repeats = Integer.parseInt(args[++i]);
        default -> {
          System.err.println("RecoveryBench: unknown option " + args[i]);
          System.exit(2);
        }
      }
    }
    Path dir = Files.createTempDirectory("ferry-recovery-bench");
    List<long[]> runs = new ArrayList<>();
    boolean allEqual = true;
    System.out.printf(Locale.ROOT, "| run | guest | transport | resume→postcopy-active ms | resume→completed ms | digest |%n");
    System.out.printf("|---|---|---|---|---|---|%n");
    for (int r = 0; r < repeats; r++) {
      long[] t = new long[2];
      boolean equal = once(size, transport, dir.resolve("r" + r), t);
      allEqual &= equal;
      runs.add(t);
      System.out.printf(Locale.ROOT, "| %d | %d MiB stress | %s | %.1f | %.1f | %s |%n",
          r + 1, size >> 20, transport, t[0] / 1e6, t[1] / 1e6, equal ? "equal" : "DIFFERENT");
    }
    long[] active = runs.stream().mapToLong(x -> x[0]).sorted().toArray();
    long[] total = runs.stream().mapToLong(x -> x[1]).sorted().toArray();
    System.out.printf(Locale.ROOT, "median: resume→postcopy-active %.1f ms, resume→completed %.1f ms (%d runs)%n",
        active[active.length / 2] / 1e6, total[total.length / 2] / 1e6, repeats);
    System.exit(allEqual ? 0 : 1);
  }

  /** One migration, one pause, one recovery; t[0], t[1] in ns. Returns whether the digests match. */
  private static boolean once(long size, String transport, Path dir, long[] t) throws Exception {
    Files.createDirectories(dir);
    try (MachineHost src = host(size);
        MachineHost dst = host(size)) {
      src.machine().resume();
      Thread.sleep(1000); // the stress guest has dirtied RAM: pages are data, not zeros
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      src.migration().setParameters(
          Map.of("max-bandwidth", 8L << 20, "downtime-limit", 1L, "max-postcopy-bandwidth", 2L << 20));
      dst.setPostcopyAutostart(() -> false);
      AtomicLong activeAt = new AtomicLong();
      src.migration().addListener(new MigrationListener() {
        @Override
        public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
          if (from == MigrationStatus.POSTCOPY_RECOVER && to == MigrationStatus.POSTCOPY_ACTIVE) {
            activeAt.set(System.nanoTime());
          }
        }
      });
      String uri = transport.equals("tcp") ? "tcp:127.0.0.1:0" : "unix:" + dir.resolve("first.sock");
      AtomicReference<String> bound = new AtomicReference<>();
      CountDownLatch listening = new CountDownLatch(1);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      CompletableFuture<Void> incoming = CompletableFuture.runAsync(() -> {
        try (TransportListener l = Transports.listen(uri)) {
          bound.set(l.boundUri().text());
          listening.countDown();
          try (MigrationChannel c = l.accept()) {
            dst.incoming(c);
          }
        } catch (Throwable e) {
          failure.set(e);
          listening.countDown();
        }
      });
      listening.await(30, TimeUnit.SECONDS);
      OutgoingMigration out = src.migration().migrate(bound.get());
      src.migration().startPostcopy();
      await(() -> dst.migration().incoming() != null && dst.migration().incoming().postcopy() != null
          && dst.migration().incoming().postcopy().state() == PostcopyIncoming.State.RUNNING);
      Thread.sleep(100);
      src.migration().pausePostcopy(); // 2 MiB/s background: far from done after 100 ms
      await(() -> src.migration().outgoingState().status() == MigrationStatus.POSTCOPY_PAUSED
          && dst.migration().incomingState().status() == MigrationStatus.POSTCOPY_PAUSED);
      AtomicReference<String> recoverAt = new AtomicReference<>();
      dst.migration().recover(transport.equals("tcp") ? "tcp:127.0.0.1:0" : "unix:" + dir.resolve("rec.sock"), recoverAt::set);
      src.migration().setParameters(Map.of("max-postcopy-bandwidth", 0L));
      long t0 = System.nanoTime();
      src.migration().resume(recoverAt.get());
      MigrationStatus end = out.await(120, TimeUnit.SECONDS);
      long t1 = System.nanoTime();
      incoming.get(120, TimeUnit.SECONDS);
      if (end != MigrationStatus.COMPLETED || failure.get() != null) {
        throw new IllegalStateException("migration " + end + ": " + src.migration().outgoingState().errorDesc()
            + (failure.get() == null ? "" : "; destination: " + failure.get()));
      }
      t[0] = activeAt.get() - t0;
      t[1] = t1 - t0;
      return src.memoryDigest().firstDifference(dst.memoryDigest()).isEmpty();
    }
  }

  private static MachineHost host(long size) {
    OutputStream sink = OutputStream.nullOutputStream();
    return new MachineHost(Machine.builder().memory(size).program("stress").serial(sink).build());
  }

  private static void await(java.util.function.BooleanSupplier c) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("condition not reached in 60 s");
      }
      Thread.sleep(2);
    }
  }
}
