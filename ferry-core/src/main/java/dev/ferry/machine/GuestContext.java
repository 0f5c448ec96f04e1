package dev.ferry.machine;

import dev.ferry.ram.GuestMemory;
import java.util.function.Supplier;

/** What a guest program sees during a step: memory, its cpu, the devices, and a way to halt briefly. */
public final class GuestContext {
  private final GuestMemory memory;
  private final CpuDevice cpu;
  private final SerialDevice serial;
  private final TimerDevice timer;
  private final Supplier<ProgramOptions> options;
  private final java.util.List<dev.ferry.block.DiskImage> disks;

  /** {@code options} is read at each use: a load may replace the machine's options. */
  GuestContext(GuestMemory memory, CpuDevice cpu, SerialDevice serial, TimerDevice timer, Supplier<ProgramOptions> options) {
    this(memory, cpu, serial, timer, options, java.util.List.of());
  }

  GuestContext(
      GuestMemory memory,
      CpuDevice cpu,
      SerialDevice serial,
      TimerDevice timer,
      Supplier<ProgramOptions> options,
      java.util.List<dev.ferry.block.DiskImage> disks) {
    this.disks = disks;
    this.memory = memory;
    this.cpu = cpu;
    this.serial = serial;
    this.timer = timer;
    this.options = options;
  }

  public GuestMemory memory() {
    return memory;
  }

  public CpuDevice cpu() {
    return cpu;
  }

  public SerialDevice serial() {
    return serial;
  }

  public TimerDevice timer() {
    return timer;
  }

  /** Host-side configuration (step size, dirty rate, seed); not guest state. */
  public ProgramOptions options() {
    return options.get();
  }

  /** The machine's drives: the one API guest programs read and write disks through. */
  public java.util.List<dev.ferry.block.DiskImage> disks() {
    return disks;
  }

  /** Halts for up to {@code nanos}; a pause request ends it early. */
  public void idle(long nanos) {
    memory.idle(nanos);
  }
}
