package dev.ferry.bench;

import dev.ferry.block.BlockStats;
import dev.ferry.cli.live.Units;
import dev.ferry.machine.IncomingLoad;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.qmp.Sizes;
import dev.ferry.transport.RawCopy;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Block migration end to end ({@code bin/bench-block}): a guest with RAM and one raw disk (filled
 * with random data, so every chunk is sent as data) migrates live with {@code blk} between two
 * machines in this JVM over a real loopback tcp or unix socket. Reports total time, downtime, disk
 * and RAM bytes, and the bulk phase's rate next to a raw copy of the same bytes over the same
 * transport, measured right after each migration. The destination's exact digest (RAM, devices,
 * disk content) must equal the stopped source's.
 *
 * <p>The destination's image is preallocated (written with zeros once, before the first run, and
 * overwritten in place by every run): the raw copy writes no file, and the first write of fresh
 * storage costs the file system more than the copy itself, so a fresh sparse image would compare
 * unlike with like. {@code --fresh-destination} measures that case instead (a new sparse image per
 * run, as {@code ferry run --drive ...,size=} creates it).
 *
 * <pre>
 * bin/bench-block [--ram 1G] [--disk 1G] [--program idle|disk] [--transports tcp,unix] [--repeats N] [--fresh-destination]
 * </pre>
 */
public final class BlockMigrationBench {
  private BlockMigrationBench() {}

  record Row(String transport, int run, MigrationStatus status, String error, MigrationStats.Snapshot stats,
      long diskBytes, long bulkBytes, long bulkNs, String check, RawCopy.Result raw, long bulkCpuNs, long rawCpuNs) {}

  /** CPU time of this whole process so far (all threads: source, destination, guest), in ns. */
  static long processCpuNs() {
    return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** CPU milliseconds per GiB moved. */
  private static String cpuPerGib(long cpuNs, long bytes) {
    return bytes <= 0 || cpuNs < 0 ? "-" : String.format(Locale.ROOT, "%.0f ms", cpuNs / 1e6 / (bytes / (double) (1L << 30)));
  }

  public static void main(String[] args) throws Exception {
    MigrationBench.quietLogging();
    long ram = 1L << 30;
    long disk = 1L << 30;
    String program = "idle";
    List<String> transports = List.of("tcp", "unix");
    int repeats = 1;
    boolean fresh = false;
    for (int i = 0; i < args.length; i += 2) {
      if (args[i].equals("--fresh-destination")) {
        fresh = true;
        i--;
        continue;
      }
      String v = i + 1 < args.length ? args[i + 1] : null;
      if (v == null) {
        System.err.println("bench-block: " + args[i] + " needs a value");
        System.exit(2);
      }
      switch (args[i]) {
        case "--ram" -> ram = Sizes.parse(v, 'M');
        case "--disk" -> disk = Sizes.parse(v, 'M');
        case "--program" -> program = v;
        case "--transports" -> transports = List.of(v.split(","));
        case "--repeats" -> repeats = Integer.parseInt(v);
        default -> {
          System.err.println("bench-block: unknown option " + args[i]
              + " (usage: bench-block [--ram 1G] [--disk 1G] [--program idle|disk] [--transports tcp,unix] [--repeats N]"
              + " [--fresh-destination])");
          System.exit(2);
        }
      }
    }
    System.out.println("# Ferry block migration benchmark");
    System.out.println();
    System.out.println("- " + Units.bytes(ram) + " RAM + " + Units.bytes(disk) + " disk (random data), program " + program
        + ", migrate blk=true, in-process, stream over a real loopback socket; raw copy = the bulk phase's bytes over the same transport, right after");
    System.out.println("- destination image: " + (fresh ? "a fresh sparse file per run (first touch of the storage)"
        : "preallocated (zeros written once before the first run, overwritten in place)"));
    System.out.println("- host: " + Runtime.getRuntime().availableProcessors() + " cpus, load average "
        + MigrationBench.loadAverage() + ", JDK " + Runtime.version());
    System.out.println();
    List<Row> rows = new ArrayList<>();
    Path dir = Files.createTempDirectory("ferry-bench-block");
    try {
      Path base = dir.resolve("base.raw");
      fillRandom(base, disk);
      if (!fresh) {
        preallocate(dir.resolve("dst.raw"), disk);
      }
      for (String t : transports) {
        for (int run = 1; run <= repeats; run++) {
          Row r = runOne(ram, disk, program, t, run, dir, base, fresh);
          rows.add(r);
          System.err.println("bench-block: " + t + " run " + run + ": " + r.status() + ", " + r.stats().totalTimeMs() + " ms"
              + (r.error() == null ? "" : " (" + r.error() + ")"));
        }
      }
    } finally {
      MigrationBench.deleteTree(dir);
    }
    System.out.println("- CPU/GiB: CPU time of the whole process (source, destination and guest threads) per GiB, during the bulk"
        + " phase and during the raw copy: on a shared machine a steadier figure than the rates");
    System.out.println();
    System.out.println("| transport | run | status | total | downtime | disk bytes | RAM pages (normal / zero) | stream bytes | bulk rate"
        + " | raw copy (same bytes) | bulk/raw | CPU/GiB bulk | CPU/GiB raw | check |");
    System.out.println("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for (Row r : rows) {
      MigrationStats.Snapshot s = r.stats();
      double bulkRate = r.bulkNs() > 0 ? r.bulkBytes() * 1e9 / r.bulkNs() : 0;
      System.out.println(String.join(" | ",
          "| " + r.transport(),
          Integer.toString(r.run()),
          r.status() == null ? "timeout" : r.status().qapiName(),
          s.totalTimeMs() + " ms",
          s.downtimeMs() < 0 ? "-" : s.downtimeMs() + " ms",
          Units.bytes(r.diskBytes()),
          s.normalPages() + " / " + s.duplicatePages(),
          Units.bytes(s.transferredBytes()),
          Units.rate(bulkRate),
          String.format(Locale.ROOT, "%.1f ms (%s)", r.raw().elapsedNs() / 1e6, Units.rate(r.raw().bytesPerSec())),
          Units.percent(bulkRate, r.raw().bytesPerSec()),
          cpuPerGib(r.bulkCpuNs(), r.bulkBytes()),
          cpuPerGib(r.rawCpuNs(), r.raw().bytes()),
          r.check() + " |"));
    }
    if (rows.stream().anyMatch(r -> !r.check().equals("digest equal"))) {
      System.exit(1);
    }
  }

  private static void fillRandom(Path file, long bytes) throws IOException {
    Random rnd = new Random(1);
    byte[] b = new byte[1 << 20];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (long pos = 0; pos < bytes; pos += b.length) {
        rnd.nextBytes(b);
        ByteBuffer bb = ByteBuffer.wrap(b, 0, (int) Math.min(b.length, bytes - pos));
        while (bb.hasRemaining()) {
          ch.write(bb, pos + bb.position());
        }
      }
    }
  }

  /** Writes {@code bytes} of zeros into {@code file} and forces them out: every block allocated. */
  private static void preallocate(Path file, long bytes) throws IOException {
    ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (long pos = 0; pos < bytes; pos += zeros.capacity()) {
        zeros.clear().limit((int) Math.min(zeros.capacity(), bytes - pos));
        while (zeros.hasRemaining()) {
          ch.write(zeros, pos + zeros.position());
        }
      }
      ch.force(false);
    }
  }

  static Row runOne(long ram, long disk, String program, String transport, int run, Path dir, Path base, boolean fresh)
      throws Exception {
    String listen = MigrationBench.uri(transport, dir.resolve("mig.sock"));
    Path srcImg = dir.resolve("src.raw");
    Path dstImg = dir.resolve("dst.raw");
    Files.copy(base, srcImg, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    if (fresh) {
      Files.deleteIfExists(dstImg);
    }
    MigrationStats.Snapshot stats;
    MigrationStatus status;
    String error = null;
    String check = "-";
    BlockStats bs;
    long bulkCpu;
    ProgramOptions po = ProgramOptions.defaults().withDirtyRateBytesPerSec(16L << 20);
    try (MachineHost src = new MachineHost(Machine.builder().memory(ram).program(program).programOptions(po)
            .drive("drive0", srcImg, disk).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(ram).program(program).programOptions(po).memPrealloc(true)
            .drive("drive0", dstImg, disk).build())) {
      src.machine().resume();
      Thread.sleep(500);
      dst.machine().awaitRamPreallocated();
      IncomingLoad incoming = IncomingLoad.listen(dst, listen);
      src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
      src.nextMigrationBlock(true, false);
      long cpu0 = processCpuNs();
      OutgoingMigration m = src.migration().migrate(incoming.uri());
      // the CPU time at the end of the bulk phase (polled: within a few ms of it)
      while (!src.block().stats().bulkCompleted() && !m.state().status().isFinal()) {
        Thread.sleep(2);
      }
      bulkCpu = processCpuNs() - cpu0;
      status = m.await(30, TimeUnit.MINUTES);
      stats = m.info();
      bs = src.block().stats();
      if (status != MigrationStatus.COMPLETED) {
        error = src.migration().outgoingState().errorDesc();
        m.cancel();
      }
      String destinationError = incoming.error(5, TimeUnit.MINUTES);
      if (error == null) {
        error = destinationError;
      }
      if (error == null) {
        check = MigrationBench.digestCheck(src, dst);
      }
    }
    long cpu1 = processCpuNs();
    RawCopy.Result raw = MigrationBench.rawCopy(transport, dir, Math.max(1, bs.bulkBytes()));
    long rawCpu = processCpuNs() - cpu1;
    return new Row(transport, run, status, error, stats, bs.transferredBytes(), bs.bulkBytes(), bs.bulkNanos(), check, raw, bulkCpu, rawCpu);
  }
}
