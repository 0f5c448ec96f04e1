package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.hmp.Hmp;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The human monitor's machine commands against a real (small) machine and the engine backend. */
class HmpMachineTest {
  @TempDir Path tmp;

  private static MachineHost host(String program, long dirtyRate) {
    return new MachineHost(
        Machine.builder()
            .memory(16L << 20)
            .program(program)
            .vcpus(2)
            .programOptions(ProgramOptions.defaults().withDirtyRateBytesPerSec(dirtyRate))
            .build());
  }

  @Test
  void infoVersionCpusRegisters() {
    try (MachineHost host = host("stress", 1L << 20)) {
      Hmp hmp = new QmpDispatcher(new EngineBackend(host, new SnapshotStore(tmp, host))).hmp();
      assertThat(hmp.execute("info version")).isEqualTo("7.2.0 (ferry-0.1.0)\n");
      String cpus = hmp.execute("info cpus");
      assertThat(cpus).matches("(?s)\\* CPU #0: thread_id=\\d+\n  CPU #1: thread_id=\\d+\n");
      String regs = hmp.execute("info registers");
      assertThat(regs).startsWith("CPU#0 program=stress\nPC =").contains("R00=", "R15=", "X07=").doesNotContain("CPU#1");
      assertThat(regs.lines().count()).isEqualTo(2 + 4 + 2);
      assertThat(hmp.execute("info registers -a")).contains("CPU#0 program=stress", "CPU#1 program=stress");
      host.machine().pause();
      long pc = host.machine().cpu(0).pc();
      assertThat(hmp.execute("info registers")).contains(String.format("PC =%016x", pc));
    }
  }

  @Test
  void dirtyRateOfABusyGuestAndOfAnIdleOne() throws Exception {
    try (MachineHost busy = host("random", 64L << 20); MachineHost idle = host("idle", 0)) {
      busy.machine().resume();
      idle.machine().resume();
      Hmp b = new QmpDispatcher(new EngineBackend(busy, new SnapshotStore(tmp, busy))).hmp();
      Hmp i = new QmpDispatcher(new EngineBackend(idle, new SnapshotStore(tmp, idle))).hmp();
      assertThat(b.execute("info dirty_rate")).startsWith("Status: unstarted\n");
      assertThat(b.execute("calc_dirty_rate 1 4096")).startsWith("Starting dirty rate measurement with calc time 1 seconds");
      assertThat(i.execute("calc_dirty_rate 1 4096")).startsWith("Starting");
      assertThat(b.execute("info dirty_rate")).startsWith("Status: measuring\n").contains("Dirty rate: (not ready)");
      assertThat(b.execute("calc_dirty_rate 1")).isEqualTo("Error: the dirty rate is already being measured\n");
      String done = awaitMeasured(b);
      assertThat(done).contains("Sample Pages: 4096 (per GB)\n", "Period: 1 (sec)\n", "Mode: page-sampling\n");
      long rate = rate(done);
      // 16 MiB written at 64 MiB/s for a second: most sampled pages change (random pages, with repeats)
      assertThat(rate).isGreaterThan(4).isLessThanOrEqualTo(16);
      assertThat(rate(awaitMeasured(i))).isZero();
      assertThat(b.execute("calc_dirty_rate 0")).startsWith("Error: Invalid calc-time: 0");
      assertThat(b.execute("calc_dirty_rate 1 5")).startsWith("Error: Invalid sample-pages: 5");
      assertThat(b.execute("calc_dirty_rate -r 1")).startsWith("Error: calc_dirty_rate -r: Ferry measures by page sampling only");
    }
  }

  private static String awaitMeasured(Hmp h) throws InterruptedException {
    for (int n = 0; n < 600; n++) {
      String s = h.execute("info dirty_rate");
      if (s.startsWith("Status: measured")) {
        return s;
      }
      Thread.sleep(20);
    }
    throw new AssertionError("not measured after 12 s: " + h.execute("info dirty_rate"));
  }

  private static long rate(String info) {
    Matcher m = Pattern.compile("Dirty rate: (\\d+) \\(MB/s\\)").matcher(info);
    assertThat(m.find()).as(info).isTrue();
    return Long.parseLong(m.group(1));
  }

  @Test
  void infoMigrateShowsTheBoundPortOfMigrateIncomingPortZero() throws Exception {
    try (MachineHost host = host("stress", 1L << 20)) {
      EngineBackend backend = new EngineBackend(host, new SnapshotStore(tmp, host));
      backend.deferIncoming();
      Hmp hmp = new QmpDispatcher(backend).hmp();
      assertThat(hmp.execute("migrate_incoming tcp:127.0.0.1:0")).isEmpty();
      String info = "";
      for (int n = 0; n < 500 && !info.contains("socket address"); n++) {
        Thread.sleep(10);
        info = hmp.execute("info migrate");
      }
      Matcher m = Pattern.compile("socket address: \\[\n\ttcp:127\\.0\\.0\\.1:(\\d+)\n\\]\n").matcher(info);
      assertThat(m.find()).as(info).isTrue();
      assertThat(Integer.parseInt(m.group(1))).isPositive();
      assertThat(info).contains("Migration status: setup\n");
    }
  }
}
