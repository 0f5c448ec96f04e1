package dev.ferry.machine;

import static dev.ferry.machine.FreshRamMigrationTest.assertSameState;
import static dev.ferry.machine.FreshRamMigrationTest.awaitTrue;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.GuestMemory;
import dev.ferry.testing.Incoming;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded random migrations between two in-process machines over a real unix socket, with a guest
 * that first-touches fresh RAM along a frontier, rewrites, zeroes and copies old pages and pokes
 * far-ahead pages while the migration runs; random xbzrle (with a small cache), bandwidth and
 * downtime limit. Each run ends with the stopped source's digest equal to the destination's.
 * {@code -Dferry.seed=S -Dferry.campaign.runs=N}; a failure names the seed of its run.
 */
@Timeout(600)
class MigrationTouchCampaignTest {
  private static final long SEED = Long.getLong("ferry.seed", 0x70c4L);
  private static final int RUNS = Integer.getInteger("ferry.campaign.runs", 3);
  private static final int PAGE = 4096;

  @TempDir Path dir;

  /**
   * Registers: r0 random state, r1 the first-touch frontier (pages), r2 ops per step. Touches
   * pages only through guest memory, so every write is logged.
   */
  static final GuestProgram TOUCHER =
      new GuestProgram() {
        @Override
        public String name() {
          return "toucher";
        }

        @Override
        public void step(GuestContext ctx) {
          CpuDevice cpu = ctx.cpu();
          if (cpu.index() != 0) {
            ctx.idle(10_000_000);
            return;
          }
          if (cpu.pc() == 0) {
            cpu.setReg(0, ctx.options().seed() | 1);
            cpu.setReg(1, 0);
            cpu.setPc(1);
          }
          GuestMemory mem = ctx.memory();
          long x = cpu.reg(0);
          long frontier = cpu.reg(1);
          long pages = mem.pageCount(0);
          for (int i = 0; i < 16; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            long r = x >>> 1;
            long old = frontier == 0 ? 0 : r % frontier;
            switch ((int) (r >>> 40) & 63) {
              case 0 -> mem.putLong(0, ((r >>> 8) % pages) * PAGE + (r & (PAGE - 8)), x); // anywhere
              case 1, 2, 3, 4, 5, 6, 7, 8 -> mem.putLong(0, old * PAGE + (r & (PAGE - 8)), x);
              case 9, 10, 11, 12 -> mem.fillPage(0, old, (byte) 0);
              case 13, 14, 15, 16 -> mem.copy(0, ((r >>> 20) % Math.max(1, frontier)) * PAGE, 0, old * PAGE, PAGE);
              default -> { // first touch at the frontier (about 3 ops in 4)
                if (frontier < pages) {
                  mem.addByte(0, frontier * PAGE + (r & (PAGE - 1)), 1);
                  frontier++;
                }
              }
            }
          }
          cpu.setReg(0, x);
          cpu.setReg(1, frontier);
          ctx.idle(1_000_000); // ~12 fresh pages per ms at most (~48 MiB/s): a slow first pass
        }

        @Override
        public String toString() {
          return name();
        }
      };

  @Test
  void randomMigrationsOfAGuestTouchingFreshAndOldPagesEndExact() throws Exception {
    for (int run = 0; run < RUNS; run++) {
      long seed = SEED + run;
      try {
        oneRun(seed, dir.resolve("run" + run));
      } catch (AssertionError | Exception e) {
        throw new AssertionError(
            "run with seed " + seed + " (again: -Dferry.seed=" + seed + " -Dferry.campaign.runs=1): " + e.getMessage(), e);
      }
    }
  }

  private static void oneRun(long seed, Path runDir) throws Exception {
    java.nio.file.Files.createDirectories(runDir);
    Random rnd = new Random(seed);
    long memory = (64L + 32 * rnd.nextInt(3)) << 20;
    ProgramOptions options = ProgramOptions.defaults().withSeed(seed);
    boolean xbzrle = rnd.nextBoolean();
    long bandwidth = rnd.nextInt(4) != 0 ? 0 : (64L + rnd.nextInt(64)) << 20;
    long downtimeMs = 1 + rnd.nextInt(300);
    long startAfterPages = rnd.nextInt((int) (memory / PAGE / 4));
    try (MachineHost src = new MachineHost(Machine.builder().memory(memory).program(TOUCHER).programOptions(options).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(memory).program(TOUCHER).programOptions(options).build())) {
      src.machine().resume();
      awaitTrue(() -> src.machine().cpu(0).reg(1) >= startAfterPages);
      String uri = "unix:" + runDir.resolve("m.sock");
      Incoming incoming =
          Incoming.listen(dst, uri, r -> Thread.ofPlatform().daemon().name("incoming").start(r));
      src.migration().setCapabilities(Map.of(MigrationCapability.XBZRLE, xbzrle));
      src.migration()
          .setParameters(Map.of("max-bandwidth", bandwidth, "downtime-limit", downtimeMs, "xbzrle-cache-size", 1L << 20));
      OutgoingMigration out = src.migration().migrate(uri);
      MigrationStatus end = out.await(120, TimeUnit.SECONDS);
      incoming.await(60, TimeUnit.SECONDS);
      String what =
          String.format(
              "%d MiB, xbzrle %s, bandwidth %d, downtime %d ms, start after %d pages",
              memory >> 20, xbzrle, bandwidth, downtimeMs, startAfterPages);
      assertThat(end).as("%s: %s", what, src.migration().outgoingState().errorDesc()).isEqualTo(MigrationStatus.COMPLETED);
      try {
        assertSameState(src, dst);
      } catch (AssertionError e) {
        throw new AssertionError(what + ": " + e.getMessage(), e);
      }
    }
  }
}
