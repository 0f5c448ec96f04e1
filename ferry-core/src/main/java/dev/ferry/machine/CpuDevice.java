package dev.ferry.machine;

import dev.ferry.savevm.ForwardingSaveStateEntry;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * A vCPU's architectural state: sixteen 64-bit registers, a program counter and a step counter,
 * plus the name of the guest program it runs. A guest program keeps everything that is not in RAM
 * here, so a pause between steps captures all of it.
 */
public final class CpuDevice implements Device {
  public static final int REGISTER_COUNT = 16;
  /** Longest program name the state carries. */
  public static final int MAX_PROGRAM_NAME_BYTES = 64;

  /** Extended registers of layout v2 (the {@code cpu/xregs} subsection). */
  public static final int XREG_COUNT = 8;

  /**
   * The cpu state layouts Ferry has had. A machine saves and loads with one of them (see {@link
   * #configured()}); a snapshot of an older layout always loads into a newer one.
   */
  public enum Layout {
    /**
     * The first release: {@code regs}, {@code pc}, {@code steps}, {@code program_len}, {@code
     * program}; section version 1.
     */
    V1(1),
    /**
     * Adds {@code flags} (uint32, a since-2 field: the section is written at version 2 while it
     * is non-zero) and the extended registers {@code xregs} in the subsection {@code cpu/xregs}
     * (sent only while one is non-zero). While both are zero a v2 machine writes exactly the v1
     * layout at version 1, so a v1 build loads it; otherwise a v1 build refuses the snapshot
     * naming the section, the versions or the subsection.
     */
    V2(2);

    /** System property choosing the layout of machines built without an explicit one. */
    public static final String PROPERTY = "ferry.cpu.layout";

    private final int code;

    Layout(int code) {
      this.code = code;
    }

    /** The layout number (= the newest section version it writes). */
    public int code() {
      return code;
    }

    public static Layout ofCode(int code) {
      for (Layout l : values()) {
        if (l.code == code) {
          return l;
        }
      }
      throw new IllegalArgumentException("unknown cpu layout " + code + " (known: 1, 2)");
    }

    /**
     * The layout named by {@code -Dferry.cpu.layout=1|2}; {@link #V2} when unset. A build
     * "configured as v1" runs with {@code -Dferry.cpu.layout=1} (or {@code
     * Machine.builder().cpuLayout(Layout.V1)}).
     */
    public static Layout configured() {
      return configuredOr(V2);
    }

    /** The layout {@code -Dferry.cpu.layout} names, or {@code dflt} when the property is unset. */
    public static Layout configuredOr(Layout dflt) {
      String v = System.getProperty(PROPERTY);
      if (v == null || v.isBlank()) {
        return dflt;
      }
      return switch (v.strip()) {
        case "1" -> V1;
        case "2" -> V2;
        default -> throw new IllegalArgumentException("-D" + PROPERTY + " must be 1 or 2: '" + v + "'");
      };
    }
  }

  /**
   * Layout v1: {@code regs} (16 x int64), {@code pc}, {@code steps} (uint64), {@code program_len}
   * (uint8) and {@code program} (that many ASCII bytes).
   */
  public static final VMStateDescription<CpuDevice> VMSTATE_V1 = v1Fields(VMStateDescription.<CpuDevice>builder("cpu").version(1).minimumVersion(1)).build();

  /** Layout v2's subsection: the extended registers, sent only while one of them is non-zero. */
  static final VMStateDescription<CpuDevice> XREGS =
      VMStateDescription.<CpuDevice>builder("cpu/xregs")
          .version(1)
          .needed(CpuDevice::hasXregs)
          .int64Array("xregs", XREG_COUNT, c -> c.xregs)
          .build();

  /**
   * Layout v2's subsection: the settings of the guest program that shape what the guest does (the
   * dirty rate of {@code random}, the sweep rate of {@code stress}, the seed of {@code random} and
   * {@code fill}; since version 2 the working set of {@code workingset}: its size, base and rate),
   * so that the destination runs the program as the source did. The program's name is in the
   * section itself ({@code program}). The step size is not: it is the host's slicing of the guest's
   * work, and stays the destination's. Sent only while a carried setting differs from {@link
   * ProgramOptions#defaults()}, so a machine with default settings keeps writing what older builds
   * load; a stream without it leaves the destination's own settings. A version 1 subsection (older
   * builds) leaves the working-set settings at their defaults. Builds that know only version 1
   * refuse a version 2 subsection naming the versions (they cannot run {@code workingset} either).
   */
  static final VMStateDescription<CpuDevice> PROGRAM =
      VMStateDescription.<CpuDevice>builder("cpu/program")
          .version(2)
          .minimumVersion(1)
          .needed(c -> !carried(c.programOptions).equals(carried(ProgramOptions.defaults())))
          .preLoad(c -> c.loadingOptions = defaultSettings())
          .uint64("dirty_rate", c -> c.programOptions.dirtyRateBytesPerSec(), (c, v) -> c.loadingOptions[0] = v)
          .uint64("stress_rate", c -> c.programOptions.stressRateBytesPerSec(), (c, v) -> c.loadingOptions[1] = v)
          .uint64("seed", c -> c.programOptions.seed(), (c, v) -> c.loadingOptions[2] = v)
          .uint64("working_set", c -> c.programOptions.workingSetBytes(), (c, v) -> c.loadingOptions[3] = v)
          .since(2)
          .uint64("working_set_base", c -> c.programOptions.workingSetBaseBytes(), (c, v) -> c.loadingOptions[4] = v)
          .since(2)
          .uint64("working_set_rate", c -> c.programOptions.workingSetRateBytesPerSec(), (c, v) -> c.loadingOptions[5] = v)
          .since(2)
          .postLoad(
              (c, version) -> {
                long[] o = c.loadingOptions;
                if (o[0] < 0 || o[1] <= 0) {
                  throw new IllegalArgumentException(
                      "cpu/program: invalid program settings: dirty_rate " + o[0] + ", stress_rate " + o[1]);
                }
                if (o[3] <= 0 || o[3] % 4096 != 0 || o[4] < 0 || o[4] % 4096 != 0 || o[5] < 0) {
                  throw new IllegalArgumentException("cpu/program: invalid working set: working_set " + o[3]
                      + ", working_set_base " + o[4] + ", working_set_rate " + o[5]);
                }
                c.loadedSettings = o.clone();
              })
          .build();

  /** The settings {@link #PROGRAM} carries. */
  private static java.util.List<Long> carried(ProgramOptions o) {
    return java.util.List.of(o.dirtyRateBytesPerSec(), o.stressRateBytesPerSec(), o.seed(),
        o.workingSetBytes(), o.workingSetBaseBytes(), o.workingSetRateBytesPerSec());
  }

  /** {@link #carried} of the defaults, as the load's starting values (a v1 subsection sets only the first three). */
  private static long[] defaultSettings() {
    return carried(ProgramOptions.defaults()).stream().mapToLong(Long::longValue).toArray();
  }

  /**
   * Layout v2 (version 2, loads 1 and 2): v1's fields, {@code flags} (uint32) since version 2, and
   * the subsections {@code cpu/xregs} and {@code cpu/program}. A v1 stream leaves {@code flags} and
   * {@code xregs} zero.
   */
  public static final VMStateDescription<CpuDevice> VMSTATE_V2 =
      v1Fields(VMStateDescription.<CpuDevice>builder("cpu").version(2).minimumVersion(1).preLoad(CpuDevice::resetV2State))
          .uint32("flags", c -> Integer.toUnsignedLong(c.flags), (c, v) -> c.flags = (int) v)
          .since(2)
          .subsection(XREGS)
          .subsection(PROGRAM)
          .build();

  /** What a v2 machine writes while {@code flags} is zero: v1's version and fields, plus the subsections. */
  static final VMStateDescription<CpuDevice> VMSTATE_V2_AT_V1 =
      v1Fields(VMStateDescription.<CpuDevice>builder("cpu").version(1).minimumVersion(1)).subsection(XREGS).subsection(PROGRAM).build();

  /** The description of the current layout ({@link Layout#V2}). */
  public static final VMStateDescription<CpuDevice> VMSTATE = VMSTATE_V2;

  private static VMStateDescription.Builder<CpuDevice> v1Fields(VMStateDescription.Builder<CpuDevice> b) {
    return b.preSave(c -> c.programBuf = c.programName.getBytes(StandardCharsets.US_ASCII))
        .int64Array("regs", REGISTER_COUNT, c -> c.regs)
        .uint64("pc", c -> c.pc, (c, v) -> c.pc = v)
        .uint64("steps", c -> c.steps, (c, v) -> c.steps = v)
        .uint8("program_len", c -> c.programBuf.length, (c, v) -> c.programBuf = new byte[(int) v])
        .vbuffer("program", "program_len", MAX_PROGRAM_NAME_BYTES, c -> c.programBuf, (c, v) -> c.programBuf = v)
        .postLoad((c, version) -> c.programName = new String(c.programBuf, StandardCharsets.US_ASCII));
  }

  private static void resetV2State(CpuDevice c) {
    c.flags = 0;
    Arrays.fill(c.xregs, 0);
    c.loadedSettings = null;
  }

  private final int index;
  private final long[] regs = new long[REGISTER_COUNT];
  private long pc;
  private long steps;
  private String programName;
  /** The name's bytes while the state is saved or loaded. */
  private byte[] programBuf = new byte[0];
  private final Layout layout;
  private int flags;
  private final long[] xregs = new long[XREG_COUNT];
  /** The machine's program options, saved in {@code cpu/program}. */
  private volatile ProgramOptions programOptions = ProgramOptions.defaults();
  /** dirty rate, stress rate, seed, working set, base, rate from the last load's {@code cpu/program}, or null (none in the stream). */
  private long[] loadedSettings;
  /** Fields of {@code cpu/program} while it loads. */
  private long[] loadingOptions = defaultSettings();

  /** A cpu with the {@link Layout#configured() configured} layout. */
  public CpuDevice(int index, String programName) {
    this(index, programName, Layout.configured());
  }

  public CpuDevice(int index, String programName, Layout layout) {
    if (index < 0) {
      throw new IllegalArgumentException("cpu index " + index);
    }
    this.index = index;
    this.programName = checkName(programName);
    this.layout = Objects.requireNonNull(layout, "layout");
  }

  private static String checkName(String name) {
    Objects.requireNonNull(name, "programName");
    if (name.isEmpty() || name.length() > MAX_PROGRAM_NAME_BYTES || !StandardCharsets.US_ASCII.newEncoder().canEncode(name)) {
      throw new IllegalArgumentException("program name must be 1.." + MAX_PROGRAM_NAME_BYTES + " ASCII chars: '" + name + "'");
    }
    return name;
  }

  @Override
  public String idstr() {
    return "cpu";
  }

  /**
   * Layout v1: the v1 description. Layout v2: loads with {@link #VMSTATE_V2}; saves at version 2
   * while {@code flags} is non-zero, else at version 1 (v1's fields plus the subsection when
   * needed), the oldest version that carries the state.
   */
  @Override
  public SaveStateEntry stateEntry() {
    if (layout == Layout.V1) {
      return VMStateEntry.of(idstr(), index, VMSTATE_V1, this);
    }
    VMStateEntry<CpuDevice> full = VMStateEntry.of(idstr(), index, VMSTATE_V2, this);
    VMStateEntry<CpuDevice> atV1 = VMStateEntry.of(idstr(), index, VMSTATE_V2_AT_V1, this);
    return new ForwardingSaveStateEntry(full) {
      @Override
      public int saveVersion() {
        return flags != 0 ? full.version() : atV1.version();
      }

      @Override
      public void save(MigrationOutput out, QemuJsonWriter desc) throws IOException {
        (flags != 0 ? full : atV1).save(out, desc);
      }
    };
  }

  public Layout layout() {
    return layout;
  }

  /** Status flags (layout v2; always 0 on a v1 machine). */
  public int flags() {
    return flags;
  }

  public void setFlags(int flags) {
    requireV2();
    this.flags = flags;
  }

  public long xreg(int i) {
    return xregs[i];
  }

  /** An extended register (layout v2). */
  public void setXreg(int i, long value) {
    requireV2();
    xregs[i] = value;
  }

  private boolean hasXregs() {
    for (long x : xregs) {
      if (x != 0) {
        return true;
      }
    }
    return false;
  }

  private void requireV2() {
    if (layout == Layout.V1) {
      throw new IllegalStateException("cpu layout v1 has no flags or extended registers");
    }
  }

  @Override
  public int instanceId() {
    return index;
  }

  public int index() {
    return index;
  }

  public long reg(int i) {
    return regs[i];
  }

  public void setReg(int i, long value) {
    regs[i] = value;
  }

  /** The live register array (for state descriptions; guest programs use reg/setReg). */
  public long[] regs() {
    return regs;
  }

  public long pc() {
    return pc;
  }

  public void setPc(long pc) {
    this.pc = pc;
  }

  /** Guest steps completed (incremented by the vCPU after each step). */
  public long steps() {
    return steps;
  }

  public void setSteps(long steps) {
    this.steps = steps;
  }

  public String programName() {
    return programName;
  }

  public void setProgramName(String programName) {
    this.programName = checkName(programName);
  }

  /** The program options this cpu's state carries (the machine's). */
  public ProgramOptions programOptions() {
    return programOptions;
  }

  public void setProgramOptions(ProgramOptions options) {
    this.programOptions = Objects.requireNonNull(options, "options");
  }

  /**
   * {@code base} with the settings the last load found in {@code cpu/program}; {@code base} itself
   * when the stream had none.
   */
  public ProgramOptions loadedProgramOptions(ProgramOptions base) {
    long[] s = loadedSettings;
    if (s == null) {
      return base;
    }
    return new ProgramOptions(base.pagesPerStep(), s[0], s[2], s[1], s[3], s[4], s[5]);
  }

  @Override
  public String toString() {
    return "cpu" + index + "[" + programName + " pc=" + pc + " steps=" + steps + (flags != 0 ? " flags=" + Integer.toHexString(flags) : "") + " regs=" + Arrays.toString(regs) + "]";
  }
}
