package dev.ferry.machine;

/**
 * Java code that plays a guest. It keeps all of its state in guest RAM and in its {@link
 * CpuDevice} (registers, pc) — never in fields — and runs in small steps, so that a machine paused
 * between steps is consistent and resumes exactly there, in this process or another. A step must
 * not block (it may {@link GuestContext#idle} instead).
 */
public interface GuestProgram {
  /** The name {@code ferry run --program} takes and the cpu device records. */
  String name();

  /** Runs one step. */
  void step(GuestContext ctx);
}
