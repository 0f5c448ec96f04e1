package dev.ferry.machine;

import dev.ferry.ram.GuestMemory;
import java.util.List;

/**
 * The built-in guest programs: {@code stress}, {@code random}, {@code fill}, {@code workingset},
 * {@code idle}. Each
 * documents the registers it uses; {@code pc} 0 means "not started yet".
 */
public final class GuestPrograms {
  /** Offset in every 4 KiB page of the byte that {@code stress} increments and the check reads. */
  public static final int STRESS_TEST_OFFSET = 0;

  private static final int PAGE = 4096;
  private static final long IDLE_NS = 10_000_000;

  private GuestPrograms() {}

  public static List<String> names() {
    return List.of("stress", "random", "fill", "workingset", "idle", "disk");
  }

  /** The program called {@code name}; IllegalArgumentException names the known ones otherwise. */
  public static GuestProgram byName(String name) {
    return switch (name) {
      case "stress" -> STRESS;
      case "random" -> RANDOM;
      case "fill" -> FILL;
      case "workingset" -> WORKINGSET;
      case "idle" -> IDLE;
      case "disk" -> DISK;
      default -> throw new IllegalArgumentException("unknown program '" + name + "' (known: " + String.join(", ", names()) + ")");
    };
  }

  /**
   * QEMU migration-test's guest: increments the byte at {@link #STRESS_TEST_OFFSET} of every page of
   * every block, in order, forever; prints {@code A} once at start and {@code B} after each full
   * pass. Runs on cpu 0 only (other cpus idle), so the pattern stays checkable. Paced by virtual
   * time at {@link ProgramOptions#stressRateBytesPerSec()}. Registers: r0 block index, r1 page
   * index in the block, r2 completed passes, r3 virtual time of the start, r4 pages touched.
   */
  public static final GuestProgram STRESS = program("stress", GuestPrograms::stressStep);

  private static void stressStep(GuestContext ctx) {
    CpuDevice cpu = ctx.cpu();
    if (cpu.index() != 0) {
      ctx.idle(IDLE_NS);
      return;
    }
    if (cpu.pc() == 0) {
      ctx.serial().write((byte) 'A');
      cpu.setPc(1);
      return;
    }
    long now = ctx.timer().nowNs();
    if (cpu.pc() == 1) {
      cpu.setReg(3, now);
      cpu.setReg(4, 0);
      cpu.setPc(2);
    }
    int n = pagesDue(ctx, now, ctx.options().stressRateBytesPerSec(), 3, 4);
    if (n == 0) {
      return;
    }
    GuestMemory mem = ctx.memory();
    int block = (int) cpu.reg(0);
    long page = cpu.reg(1);
    long pages = mem.pageCount(block);
    for (int i = n; i > 0; i--) {
      mem.addByte(block, page * PAGE + STRESS_TEST_OFFSET, 1);
      if (++page == pages) {
        page = 0;
        if (++block == mem.blockCount()) {
          block = 0;
          cpu.setReg(2, cpu.reg(2) + 1);
          ctx.serial().write((byte) 'B');
        }
        pages = mem.pageCount(block);
      }
    }
    cpu.setReg(0, block);
    cpu.setReg(1, page);
  }

  /**
   * Writes whole pages of random data at random places at {@code dirtyRateBytesPerSec} of virtual
   * time (paced by the timer device, so the rate holds across pause and migration). Registers: r0
   * random state, r1 virtual time of start, r2 pages written.
   */
  public static final GuestProgram RANDOM = program("random", GuestPrograms::randomStep);

  private static void randomStep(GuestContext ctx) {
    CpuDevice cpu = ctx.cpu();
    long now = ctx.timer().nowNs();
    if (cpu.pc() == 0) {
      cpu.setReg(0, ctx.options().seed() * 0x9E3779B97F4A7C15L + cpu.index() + 1);
      cpu.setReg(1, now);
      cpu.setPc(1);
    }
    int n = pagesDue(ctx, now, ctx.options().dirtyRateBytesPerSec(), 1, 2);
    if (n == 0) {
      return;
    }
    GuestMemory mem = ctx.memory();
    long total = totalPages(mem);
    long x = cpu.reg(0);
    for (int i = 0; i < n; i++) {
      x = xorshift(x);
      long at = locate(mem, Long.remainderUnsigned(x, total));
      x = fillPage(mem, blockOf(at), pageOf(at), x);
    }
    cpu.setReg(0, x);
  }

  /**
   * Fills every page of every block with random data once, then idles. Registers: r0 random state,
   * r1 block index, r2 page index in the block; pc 2 = done.
   */
  public static final GuestProgram FILL = program("fill", GuestPrograms::fillStep);

  private static void fillStep(GuestContext ctx) {
    CpuDevice cpu = ctx.cpu();
    if (cpu.pc() == 0) {
      cpu.setReg(0, ctx.options().seed() * 0x9E3779B97F4A7C15L + cpu.index() + 1);
      cpu.setPc(cpu.index() == 0 ? 1 : 2); // one filler is enough
    }
    if (cpu.pc() == 2) {
      ctx.idle(IDLE_NS);
      return;
    }
    GuestMemory mem = ctx.memory();
    long x = cpu.reg(0);
    int block = (int) cpu.reg(1);
    long page = cpu.reg(2);
    for (int i = ctx.options().pagesPerStep(); i > 0; i--) {
      x = fillPage(mem, block, page, x);
      if (++page == mem.pageCount(block)) {
        page = 0;
        if (++block == mem.blockCount()) {
          cpu.setPc(2);
          break;
        }
      }
    }
    cpu.setReg(0, x);
    cpu.setReg(1, block);
    cpu.setReg(2, page);
  }

  /**
   * The qword {@code workingset} writes at offset 0 of page {@code globalPage} (pages of all blocks
   * numbered end to end): non-zero, derived from the page index so a check can recompute it, with
   * its low byte zero, so that byte is the page's counter.
   */
  public static long workingSetFill(long globalPage) {
    long x = (globalPage + 1) * 0x9E3779B97F4A7C15L;
    x ^= x >>> 29;
    return (x | Long.MIN_VALUE) & ~0xffL;
  }

  /**
   * After QEMU's migration benchmark guests: fills all RAM once (the qword {@link #workingSetFill}
   * at offset 0 of every page, blocks in order), prints {@code A}, then increments the first byte
   * of every page of the working set ({@link ProgramOptions#workingSetBytes()} from {@link
   * ProgramOptions#workingSetBaseBytes()}, blocks laid end to end, clipped to RAM) in order, forever,
   * printing {@code B} after each pass; as fast as the vCPU goes unless {@link
   * ProgramOptions#workingSetRateBytesPerSec()} paces it by virtual time. Runs on cpu 0 only.
   * Registers: r0 pages filled, r1 next working-set page (index in the set), r2 completed passes,
   * r3 virtual time the loop started, r4 pages incremented since then. pc 1 = filling, 2 = loop.
   */
  public static final GuestProgram WORKINGSET = program("workingset", GuestPrograms::workingSetStep);

  private static void workingSetStep(GuestContext ctx) {
    CpuDevice cpu = ctx.cpu();
    if (cpu.index() != 0) {
      ctx.idle(IDLE_NS);
      return;
    }
    GuestMemory mem = ctx.memory();
    int perStep = ctx.options().pagesPerStep();
    long total = totalPages(mem);
    if (cpu.pc() == 0) {
      cpu.setPc(1);
    }
    if (cpu.pc() == 1) {
      long page = cpu.reg(0);
      long end = Math.min(total, page + perStep * 8L); // one qword a page: fill faster than stress
      for (; page < end; page++) {
        long at = locate(mem, page);
        mem.putLong(blockOf(at), pageOf(at) * PAGE, workingSetFill(page));
      }
      cpu.setReg(0, page);
      if (page == total) {
        ctx.serial().write((byte) 'A');
        cpu.setReg(3, ctx.timer().nowNs());
        cpu.setReg(4, 0);
        cpu.setPc(2);
      }
      return;
    }
    long[] set = workingSetPages(ctx.options(), total);
    if (set[1] == 0) {
      ctx.idle(IDLE_NS);
      return;
    }
    long rate = ctx.options().workingSetRateBytesPerSec();
    int n = rate > 0 ? pagesDue(ctx, ctx.timer().nowNs(), rate, 3, 4) : perStep;
    if (n == 0) {
      return;
    }
    long i = cpu.reg(1) % set[1];
    for (; n > 0; n--) {
      long at = locate(mem, set[0] + i);
      mem.addByte(blockOf(at), pageOf(at) * PAGE, 1);
      if (++i == set[1]) {
        i = 0;
        cpu.setReg(2, cpu.reg(2) + 1);
        ctx.serial().write((byte) 'B');
      }
    }
    cpu.setReg(1, i);
  }

  /**
   * Pacing by virtual time: the pages due at {@code now} at {@code rateBytesPerSec} since the start
   * (register {@code startReg}) minus those done (register {@code doneReg}), at most {@link
   * ProgramOptions#pagesPerStep()}. Counts them as done (a debt the guest cannot keep up with is
   * dropped, not burst) and returns them; with none due it idles until the next one and returns 0.
   */
  private static int pagesDue(GuestContext ctx, long now, long rateBytesPerSec, int startReg, int doneReg) {
    CpuDevice cpu = ctx.cpu();
    long done = cpu.reg(doneReg);
    long due = (long) ((now - cpu.reg(startReg)) * (rateBytesPerSec / (PAGE * 1e9))) - done;
    int perStep = ctx.options().pagesPerStep();
    if (due <= 0) {
      long nsPerPage = rateBytesPerSec == 0 ? IDLE_NS : Math.max(1, (long) (PAGE * 1e9 / rateBytesPerSec));
      ctx.idle(Math.min(IDLE_NS, nsPerPage * Math.min(perStep, 1 - due)));
      return 0;
    }
    if (due > 8L * perStep) {
      done += due - perStep;
      due = perStep;
    }
    int n = (int) Math.min(due, perStep);
    cpu.setReg(doneReg, done + n);
    return n;
  }

  /** Pages of all blocks. */
  static long totalPages(GuestMemory mem) {
    long total = 0;
    for (int b = 0; b < mem.blockCount(); b++) {
      total += mem.pageCount(b);
    }
    return total;
  }

  /** {first global page, page count} of the working set, clipped to {@code totalPages}. */
  static long[] workingSetPages(ProgramOptions o, long totalPages) {
    long first = Math.min(totalPages, o.workingSetBaseBytes() / PAGE);
    long count = Math.min(o.workingSetBytes() / PAGE, totalPages - first);
    return new long[] {first, count};
  }

  /** Bits of a {@link #locate} result that hold the page in its block (2^40 pages: 4 PiB). */
  private static final int PAGE_BITS = 40;

  /**
   * Where global page {@code globalPage} (pages of all blocks numbered end to end) is: its block
   * index and its page in that block, packed in one long ({@link #blockOf}, {@link #pageOf}) so the
   * guests' per-page loops allocate nothing.
   */
  private static long locate(GuestMemory mem, long globalPage) {
    int b = 0;
    while (globalPage >= mem.pageCount(b)) {
      globalPage -= mem.pageCount(b++);
    }
    return (long) b << PAGE_BITS | globalPage;
  }

  private static int blockOf(long located) {
    return (int) (located >>> PAGE_BITS);
  }

  private static long pageOf(long located) {
    return located & ((1L << PAGE_BITS) - 1);
  }

  /**
   * Writes its disks: walks every chunk of every drive in order and writes one sequence-numbered,
   * checksummed record into each ({@link dev.ferry.block.DiskCheck}, checked by {@code ferry-disk-check}),
   * paced at {@code --dirty-rate} counted as one 1 MiB chunk per record (default 64M: 64 records/s).
   * Prints {@code A} at start and {@code B} after each pass over all disks. Runs on cpu 0 only; without
   * a drive it idles. Registers: r0 disk index, r1 chunk index, r2 completed passes, r3 virtual time of
   * the start, r4 records written (pacing).
   */
  public static final GuestProgram DISK = program("disk", GuestPrograms::diskStep);

  /** The record {@code disk} writes next, one per vCPU thread. */
  private static final ThreadLocal<java.nio.ByteBuffer> DISK_RECORD =
      ThreadLocal.withInitial(() -> java.nio.ByteBuffer.allocateDirect(dev.ferry.block.DiskCheck.RECORD_BYTES));

  private static void diskStep(GuestContext ctx) {
    CpuDevice cpu = ctx.cpu();
    List<dev.ferry.block.DiskImage> disks = ctx.disks();
    if (cpu.index() != 0 || disks.isEmpty()) {
      ctx.idle(IDLE_NS);
      return;
    }
    long now = ctx.timer().nowNs();
    if (cpu.pc() == 0) {
      ctx.serial().write((byte) 'A');
      cpu.setReg(3, now);
      cpu.setReg(4, 0);
      cpu.setPc(1);
      return;
    }
    double perNs = ctx.options().dirtyRateBytesPerSec() / (dev.ferry.block.BlockDescriptor.CHUNK_BYTES * 1e9);
    long due = (long) ((now - cpu.reg(3)) * perNs) - cpu.reg(4);
    if (due <= 0) {
      ctx.idle(IDLE_NS);
      return;
    }
    int n = (int) Math.min(due, 4);
    cpu.setReg(4, cpu.reg(4) + (due > 32 ? due : n)); // cannot keep up: drop the debt
    long total = dev.ferry.block.DiskCheck.totalChunks(disks);
    for (int i = 0; i < n; i++) {
      int d = (int) cpu.reg(0);
      long c = cpu.reg(1);
      long global = c;
      for (int k = 0; k < d; k++) {
        global += disks.get(k).chunkCount();
      }
      java.nio.ByteBuffer r = DISK_RECORD.get();
      dev.ferry.block.DiskCheck.fill(r, d, c, cpu.reg(2) * total + global);
      try {
        disks.get(d).write(c * dev.ferry.block.BlockDescriptor.CHUNK_BYTES, r.clear());
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException("disk program: writing drive '" + disks.get(d).name() + "': " + e.getMessage(), e);
      }
      if (++c == disks.get(d).chunkCount()) {
        c = 0;
        if (++d == disks.size()) {
          d = 0;
          cpu.setReg(2, cpu.reg(2) + 1);
          ctx.serial().write((byte) 'B');
        }
      }
      cpu.setReg(0, d);
      cpu.setReg(1, c);
    }
  }

  /** Touches nothing: halts in every step. */
  public static final GuestProgram IDLE = program("idle", GuestPrograms::idleStep);

  private static void idleStep(GuestContext ctx) {
    ctx.idle(IDLE_NS);
  }

  /** A program called {@code name} (also its toString) whose step is {@code step}. */
  private static GuestProgram program(String name, java.util.function.Consumer<GuestContext> step) {
    return new GuestProgram() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public void step(GuestContext ctx) {
        step.accept(ctx);
      }

      @Override
      public String toString() {
        return name;
      }
    };
  }

  private static long fillPage(GuestMemory mem, int block, long page, long x) {
    long base = page * PAGE;
    for (int off = 0; off < PAGE; off += 8) {
      x = xorshift(x);
      mem.putLong(block, base + off, x);
    }
    return x;
  }

  private static long xorshift(long x) {
    x ^= x << 13;
    x ^= x >>> 7;
    x ^= x << 17;
    return x == 0 ? 0x2545F4914F6CDD1DL : x;
  }
}
