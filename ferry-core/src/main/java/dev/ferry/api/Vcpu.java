package dev.ferry.api;

import dev.ferry.machine.CpuDevice;
import dev.ferry.machine.GuestContext;
import java.time.Duration;

/**
 * What a {@link VcpuProgram} step sees: its vCPU's index and registers, guest RAM (the accessors of
 * {@link GuestAccess}, writable during the step) and a way to halt briefly. Valid only on its vCPU's
 * thread during a step; not thread-safe.
 */
public final class Vcpu extends GuestAccess {
  /** General-purpose registers per vCPU, saved and migrated with the vCPU state. */
  public static final int REGISTER_COUNT = CpuDevice.REGISTER_COUNT;

  private final GuestContext ctx;

  Vcpu(GuestContext ctx) {
    super(ctx.memory());
    this.ctx = ctx;
  }

  /** Whether this view belongs to {@code c} (a vCPU thread's context of its life). */
  boolean of(GuestContext c) {
    return ctx == c;
  }

  @Override
  void checkStep() {
    if (!memory.inStep()) {
      throw new IllegalStateException("guest memory is written only inside a step (VcpuProgram.step on its vCPU thread)");
    }
  }

  /** The vCPU's index, 0 to {@code vcpus - 1}. */
  public int index() {
    return ctx.cpu().index();
  }

  /**
   * Register {@code i} (0 to {@link #REGISTER_COUNT} - 1): program state that is neither in RAM nor
   * in a device (a loop counter, a cursor).
   */
  public long register(int i) {
    return ctx.cpu().reg(checkRegister(i));
  }

  /** Sets register {@code i}, inside a step. */
  public void setRegister(int i, long value) {
    checkStep();
    ctx.cpu().setReg(checkRegister(i), value);
  }

  private static int checkRegister(int i) {
    if (i < 0 || i >= REGISTER_COUNT) {
      throw new IndexOutOfBoundsException("register " + i + " (a vCPU has " + REGISTER_COUNT + ")");
    }
    return i;
  }

  /** How many steps this vCPU ran (travels with the vCPU state). */
  public long steps() {
    return ctx.cpu().steps();
  }

  /** Halts for up to {@code time} (a guest's wait for an interrupt); a pause ends it early. */
  public void idle(Duration time) {
    ctx.idle(Math.max(0, time.toNanos()));
  }

  @Override
  public String toString() {
    return "Vcpu[" + index() + "]";
  }
}
