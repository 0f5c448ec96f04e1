package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.vmstate.VMStateEntry;
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

  /**
   * Layout v1: {@code regs} (16 x int64), {@code pc}, {@code steps} (uint64), {@code program_len}
   * (uint8) and {@code program} (that many ASCII bytes).
   */
  public static final VMStateDescription<CpuDevice> VMSTATE =
      VMStateDescription.<CpuDevice>builder("cpu")
          .version(1)
          .minimumVersion(1)
          .preSave(c -> c.programBuf = c.programName.getBytes(StandardCharsets.US_ASCII))
          .int64Array("regs", REGISTER_COUNT, c -> c.regs)
          .uint64("pc", c -> c.pc, (c, v) -> c.pc = v)
          .uint64("steps", c -> c.steps, (c, v) -> c.steps = v)
          .uint8("program_len", c -> c.programBuf.length, (c, v) -> c.programBuf = new byte[(int) v])
          .vbuffer("program", "program_len", MAX_PROGRAM_NAME_BYTES, c -> c.programBuf, (c, v) -> c.programBuf = v)
          .postLoad((c, version) -> c.programName = new String(c.programBuf, StandardCharsets.US_ASCII))
          .build();

  private final int index;
  private final long[] regs = new long[REGISTER_COUNT];
  private long pc;
  private long steps;
  private String programName;
  /** The name's bytes while the state is saved or loaded. */
  private byte[] programBuf = new byte[0];

  public CpuDevice(int index, String programName) {
    if (index < 0) {
      throw new IllegalArgumentException("cpu index " + index);
    }
    this.index = index;
    this.programName = checkName(programName);
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

  @Override
  public SaveStateEntry stateEntry() {
    return VMStateEntry.of(idstr(), index, VMSTATE, this);
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

  @Override
  public String toString() {
    return "cpu" + index + "[" + programName + " pc=" + pc + " steps=" + steps + " regs=" + Arrays.toString(regs) + "]";
  }
}
