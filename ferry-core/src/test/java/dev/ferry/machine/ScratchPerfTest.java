package dev.ferry.machine;

import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.OutgoingMigration;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ScratchPerfTest {
  @Test
  void perf() throws Exception {
    String program = System.getProperty("p", "fill");
    long mem = Long.getLong("m", 1L << 30);
    Path dir = Files.createTempDirectory("perf");
    for (int rep = 0; rep < 2; rep++) {
      try (MachineHost src = new MachineHost(Machine.builder().memory(mem).program(program).serial(new ByteArrayOutputStream()).build());
          MachineHost dst = new MachineHost(Machine.builder().memory(mem).program(program).serial(new ByteArrayOutputStream()).build())) {
        src.machine().resume();
        Thread.sleep(program.equals("fill") ? 3000 : 500);
        String uri = "unix:" + dir.resolve("s" + rep);
        CountDownLatch l = new CountDownLatch(1);
        CompletableFuture<Void> in = CompletableFuture.runAsync(() -> {
          try { dst.incoming(uri, b -> l.countDown()); } catch (Exception e) { throw new RuntimeException(e); }
        });
        l.await();
        long t0 = System.nanoTime();
        OutgoingMigration o = src.migration().migrate(uri);
        System.out.println("status " + o.await(120, TimeUnit.SECONDS));
        in.get();
        long ms = (System.nanoTime() - t0) / 1_000_000;
        MigrationStats.Snapshot s = o.info();
        System.out.printf("PERF %s %d MiB: wall %d ms total %d ms downtime %d ms setup %d ms bytes %d zero %d normal %d syncs %d -> %.2f GB/s%n",
            program, mem >> 20, ms, s.totalTimeMs(), s.downtimeMs(), s.setupTimeMs(), s.transferredBytes(), s.duplicatePages(), s.normalPages(), s.dirtySyncCount(),
            s.transferredBytes() / (s.totalTimeMs() * 1e6));
        if (program.equals("stress")) System.out.println("check " + StressCheck.check(dst.machine()).summary());
      }
    }
  }
}
class ScratchPerfMain {
  public static void main(String[] a) throws Exception {
    new ScratchPerfTest().perf();
  }
}
