package dev.ferry.cli.soak;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Transport;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The dimensions of one soak run, drawn from its own seed: transport, guest program, memory,
 * capabilities, parameters, and the fault with its trigger. The same run seed gives the same plan on
 * every machine ({@link Random} is specified bit for bit), so a failing run is replayed from the
 * seed printed next to it.
 *
 * @param run the run's index in the soak (0-based)
 * @param runSeed the seed this plan was drawn from ({@link #runSeed(long, int)})
 * @param program {@code stress}, {@code random}, {@code fill}, {@code idle} or {@code firsttouch}
 *     ({@code stress} paced so slowly that its first pass is still running when the migration
 *     starts: RAM ahead of it has never been touched and is first touched during the migration)
 * @param maxBandwidthBytesPerSec null = the engine's default (unlimited in practice)
 * @param downtimeLimitMs null = the engine's default (300)
 * @param dirtyRateBytesPerSec {@code --dirty-rate} of the guest, null = the program's default
 * @param warmupMs how long the source's guest runs before the migration ({@code stress}: after its
 *     first full pass)
 * @param triggerAt the fault's moment: stream bytes for {@link Trigger#BYTES} (transferred as the
 *     source counts them) and {@link Trigger#CUT} (forwarded by the proxy), ms after {@code migrate}
 *     for {@link Trigger#TIME}; unused for {@link Fault#NONE}
 * @param recovery for {@link Fault#POSTCOPY_RECOVERY}: how the postcopy link breaks and how the
 *     recovery goes; null for the other faults
 */
public record SoakPlan(
    int run,
    long runSeed,
    Transport transport,
    String program,
    long memoryBytes,
    boolean xbzrle,
    boolean returnPath,
    Long downtimeLimitMs,
    Long maxBandwidthBytesPerSec,
    Long dirtyRateBytesPerSec,
    long warmupMs,
    Fault fault,
    Trigger trigger,
    long triggerAt,
    Recovery recovery) {

  static final long MIN_MEMORY_BYTES = 64L << 20;
  static final long MAX_MEMORY_BYTES = 1L << 30;
  static final List<String> PROGRAMS = List.of("stress", "random", "fill", "idle", "firsttouch");

  /** What goes wrong during the run. */
  public enum Fault {
    NONE("none"),
    CANCEL("cancel"),
    KILL_DESTINATION("kill-destination"),
    KILL_SOURCE("kill-source"),
    PROXY_CUT("proxy-cut"),
    /**
     * A postcopy migration whose link breaks after the destination ran (a proxy cut, or {@code
     * migrate-pause} on one side), then recovered ({@code migrate-recover}, {@code migrate resume});
     * sometimes the recovery's own link is cut too, and recovered again.
     */
    POSTCOPY_RECOVERY("postcopy-recovery");

    private final String label;

    Fault(String label) {
      this.label = label;
    }

    public String label() {
      return label;
    }

    /** The fault whose {@link #label()} is {@code label}. */
    public static Fault of(String label) {
      for (Fault f : values()) {
        if (f.label.equals(label)) {
          return f;
        }
      }
      throw new IllegalArgumentException("unknown fault '" + label + "' (" + String.join(", ",
          java.util.Arrays.stream(values()).map(Fault::label).toList()) + ")");
    }

    /** Transports the fault applies to: the proxy sits on sockets; a file has no live destination. */
    List<Transport> transports() {
      return switch (this) {
        case PROXY_CUT, POSTCOPY_RECOVERY -> List.of(Transport.TCP, Transport.UNIX);
        case KILL_DESTINATION -> List.of(Transport.TCP, Transport.UNIX, Transport.EXEC, Transport.FD);
        default -> List.of(Transport.values());
      };
    }
  }

  /** When the fault strikes. */
  public enum Trigger {
    NONE, BYTES, TIME, CUT,
    /** {@code migrate-pause}, {@link #triggerAt} ms after the destination ran (postcopy recovery). */
    PAUSE;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * How a {@link Fault#POSTCOPY_RECOVERY} run breaks its link and recovers. The break comes after the
   * destination ran POSTCOPY_RUN (a cut before it fails the destination for good, as in QEMU): {@link
   * #triggerAt} stream bytes later for a cut, ms later for a pause.
   *
   * @param pauseOnSource with {@link Trigger#PAUSE}: {@code migrate-pause} on the source, else on the destination
   * @param secondCutBytes the first recovery's connection is cut after this many bytes (inside the
   *     handshake or soon after the resume); 0: it is not cut
   * @param postcopyBandwidthBytesPerSec {@code max-postcopy-bandwidth} until the last recovery (low,
   *     so the breaks come long before the end); the last recovery runs unlimited
   * @param guestRuns the destination is not held: its {@code stress} guest runs from POSTCOPY_RUN on,
   *     faults on missing pages, and its vCPUs wait through the pause for pages requested before
   *     it (re-sent after the resume); the oracle is then the stress pattern, not the digest
   */
  public record Recovery(boolean pauseOnSource, long secondCutBytes, long postcopyBandwidthBytesPerSec, boolean guestRuns) {}

  /** The guest program {@code ferry run} runs ({@code firsttouch} is a slow {@code stress}). */
  public String machineProgram() {
    return program.equals("firsttouch") ? "stress" : program;
  }

  /** The seed of run {@code k} of a soak seeded {@code seed} (SplitMix64 of both). */
  public static long runSeed(long seed, int k) {
    long z = seed + (k + 1) * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** Draws run {@code k}'s plan from {@code runSeed}, with guests of at most {@code maxMemoryBytes}. */
  public static SoakPlan draw(int k, long runSeed, long maxMemoryBytes) {
    return draw(k, runSeed, maxMemoryBytes, null);
  }

  /**
   * As {@link #draw(int, long, long)}, the fault {@code only} when not null ({@code ferry soak
   * --fault}): the same draws follow, so a run is replayed with the same {@code --fault}.
   */
  public static SoakPlan draw(int k, long runSeed, long maxMemoryBytes, Fault only) {
    Random r = new Random(runSeed);
    // the fault first: it decides which transports fit
    Fault drawn = pick(r, new double[] {0.25, 0.15, 0.15, 0.15, 0.15, 0.15}, Fault.values());
    Fault fault = only != null ? only : drawn;
    boolean recovering = fault == Fault.POSTCOPY_RECOVERY;
    List<Transport> ts = fault.transports();
    Transport transport = ts.get(r.nextInt(ts.size()));
    String program = PROGRAMS.get(r.nextInt(PROGRAMS.size()));
    // 64M half the time, each doubling half as likely, up to the cap
    long mem = MIN_MEMORY_BYTES;
    while (mem < Math.min(maxMemoryBytes, MAX_MEMORY_BYTES) && r.nextBoolean()) {
      mem <<= 1;
    }
    boolean xbzrle = r.nextDouble() < 0.3 && !recovering;
    boolean returnPath = transport.hasReturnPath() && (r.nextDouble() < 0.7 || recovering); // postcopy needs it
    Long downtime = pick(r, new double[] {0.4, 0.15, 0.15, 0.15, 0.15}, new Long[] {null, 30L, 100L, 300L, 1000L});
    // a limit that lets a dense guest through in at most ~8 s
    Long bandwidth = null;
    if (r.nextDouble() < 0.55) {
      long b = 32L << 20;
      while (b < mem / 8) {
        b <<= 1;
      }
      bandwidth = b << r.nextInt(3);
    }
    // the guest must dirty slower than the link, or precopy cannot converge
    // (without a limit the link is the limit: exec's pipes carry far less than a socket, issue 12, so
    // an unpaced stress guest outruns them and precopy never ends — issue 10's budget is not there yet)
    Long unlimited = transport == Transport.EXEC ? Long.valueOf(32L << 20) : null;
    Long dirtyRate =
        switch (program) {
          case "stress" -> bandwidth == null ? unlimited : Long.valueOf(bandwidth / 4);
          case "random" -> bandwidth == null ? unlimited : Long.valueOf(Math.min(64L << 20, bandwidth / 4));
          case "firsttouch" -> Math.max(1L << 20, Math.min(mem / 16, bandwidth == null ? Long.MAX_VALUE : bandwidth / 4));
          default -> null;
        };
    long warmup =
        switch (program) {
          case "firsttouch" -> 100 + r.nextInt(900);
          case "fill" -> 50 + r.nextInt(1500); // often still filling
          default -> 100 + r.nextInt(400);
        };
    Trigger trigger = Trigger.NONE;
    long at = 0;
    Recovery recovery = null;
    switch (fault) {
      case NONE -> {}
      case POSTCOPY_RECOVERY -> {
        boolean pause = r.nextDouble() < 0.3;
        trigger = pause ? Trigger.PAUSE : Trigger.CUT;
        // ms, or stream bytes after RUN: a guest of zero pages has little left to send by then
        // (with few pages to send, all of postcopy takes a few hundred ms on a 2-core machine)
        boolean sparse = program.equals("idle") || program.equals("firsttouch");
        at = pause ? r.nextInt(sparse ? 20 : 100) : logUniform(r, 1, sparse ? 16L << 10 : 4L << 20);
        boolean onSource = pause && r.nextBoolean();
        long second = r.nextDouble() < 0.4 ? logUniform(r, 1, 256L << 10) : 0;
        boolean runs = program.equals("stress") && r.nextBoolean();
        recovery = new Recovery(onSource, second, 2L << 20, runs);
      }
      case PROXY_CUT -> {
        trigger = Trigger.CUT;
        at = logUniform(r, 16, mem + (mem >> 2)); // from the header on; past the end = no cut
      }
      default -> {
        if (r.nextBoolean()) {
          trigger = Trigger.BYTES;
          at = logUniform(r, 4096, mem);
        } else {
          trigger = Trigger.TIME;
          at = r.nextInt(1500);
        }
      }
    }
    return new SoakPlan(k, runSeed, transport, program, mem, xbzrle, returnPath, downtime, bandwidth, dirtyRate, warmup,
        fault, trigger, at, recovery);
  }

  private static long logUniform(Random r, long lo, long hi) {
    double x = Math.log(lo) + r.nextDouble() * (Math.log(hi) - Math.log(lo));
    return Math.max(lo, Math.min(hi, (long) Math.exp(x)));
  }

  private static <T> T pick(Random r, double[] weights, T[] values) {
    double x = r.nextDouble();
    for (int i = 0; i < values.length - 1; i++) {
      x -= weights[i];
      if (x < 0) {
        return values[i];
      }
    }
    return values[values.length - 1];
  }

  /** The {@link LiveMigration} spec: destinations start paused, so they are checked before they run. */
  LiveMigration.Spec spec() {
    return new LiveMigration.Spec(memoryBytes, machineProgram(), transport, maxBandwidthBytesPerSec, downtimeLimitMs,
        dirtyRateBytesPerSec, xbzrle, recovery == null || !recovery.guestRuns()).withPostcopy(fault == Fault.POSTCOPY_RECOVERY);
  }

  /** The dimensions as JSON members of {@code o}. */
  void describe(ObjectNode o) {
    o.put("run", run);
    o.put("seed", Long.toUnsignedString(runSeed, 16));
    o.put("transport", transport.scheme());
    o.put("program", program);
    o.put("memory", memoryBytes);
    o.put("xbzrle", xbzrle);
    o.put("return-path", returnPath);
    putOrNull(o, "downtime-limit", downtimeLimitMs);
    putOrNull(o, "max-bandwidth", maxBandwidthBytesPerSec);
    putOrNull(o, "dirty-rate", dirtyRateBytesPerSec);
    o.put("warmup-ms", warmupMs);
    ObjectNode f = o.putObject("fault");
    f.put("kind", fault.label());
    if (fault != Fault.NONE) {
      f.put("trigger", trigger.label());
      f.put("at", triggerAt);
    }
    if (recovery != null) {
      if (trigger == Trigger.PAUSE) {
        f.put("pause-side", recovery.pauseOnSource() ? "source" : "destination");
      }
      f.put("second-cut", recovery.secondCutBytes());
      f.put("postcopy-bandwidth", recovery.postcopyBandwidthBytesPerSec());
      f.put("guest-runs", recovery.guestRuns());
    }
  }

  static void putOrNull(ObjectNode o, String name, Long v) {
    if (v == null) {
      o.putNull(name);
    } else {
      o.put(name, v);
    }
  }

  /** One line for the console: {@code tcp stress 64 MiB xbzrle rp bw=128M dl=300 fault=cancel@time:420}. */
  public String oneLine() {
    StringBuilder b = new StringBuilder();
    b.append(transport.scheme()).append(' ').append(program).append(' ').append(memoryBytes >> 20).append("M");
    if (xbzrle) {
      b.append(" xbzrle");
    }
    if (returnPath) {
      b.append(" rp");
    }
    if (maxBandwidthBytesPerSec != null) {
      b.append(" bw=").append(maxBandwidthBytesPerSec >> 20).append("M");
    }
    if (downtimeLimitMs != null) {
      b.append(" dl=").append(downtimeLimitMs);
    }
    b.append(" fault=").append(fault.label());
    if (fault != Fault.NONE) {
      b.append('@').append(trigger.label()).append(':').append(triggerAt);
    }
    if (recovery != null) {
      if (trigger == Trigger.PAUSE) {
        b.append(recovery.pauseOnSource() ? "@src" : "@dst");
      }
      if (recovery.secondCutBytes() > 0) {
        b.append("+cut:").append(recovery.secondCutBytes());
      }
      if (recovery.guestRuns()) {
        b.append(" dst-runs");
      }
    }
    return b.toString();
  }
}
