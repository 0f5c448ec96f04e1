package dev.ferry.machine;

import java.util.Arrays;
import java.util.Objects;

/**
 * A vCPU's architectural state: sixteen 64-bit registers, a program counter and a step counter,
 * plus the name of the guest program it runs. A guest program keeps everything that is not in RAM
 * here, so a pause between steps captures all of it.
 */
public final class CpuDevice implements Device {
  public static final int REGISTER_COUNT = 16;

  private final int index;
  private final long[] regs = new long[REGISTER_COUNT];
  private long pc;
  private long steps;
  private String programName;

  public CpuDevice(int index, String programName) {
    if (index < 0) {
      throw new IllegalArgumentException("cpu index " + index);
    }
    this.index = index;
    this.programName = Objects.requireNonNull(programName, "programName");
  }

  @Override
  public String idstr() {
    return "cpu";
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
    this.programName = Objects.requireNonNull(programName, "programName");
  }

  @Override
  public String toString() {
    return "cpu" + index + "[" + programName + " pc=" + pc + " steps=" + steps + " regs=" + Arrays.toString(regs) + "]";
  }
}
