package dev.ferry.api;

/**
 * The embedder's own guest code, run by every vCPU of a machine ({@link
 * FerryMachine.Builder#vcpuProgram}) in the machine's vCPU loop, exactly as Ferry's built-in
 * programs are: one {@link #step} at a time on each vCPU thread, each step inside a guest step, so
 * a pause, a save or a migration's switch-over stops every vCPU between two steps and auto-converge
 * slows them down by sleeping between steps.
 *
 * <p>A program keeps all of its state in guest RAM ({@link Vcpu}'s accessors), in its vCPU's
 * registers ({@link Vcpu#register}) and in devices of its own, never in Java fields: then a machine
 * stopped between steps is consistent and goes on exactly where it stopped, here after a load or on
 * another host after a migration. A step is short and never blocks (it may {@link Vcpu#idle}); one
 * that throws stops the machine in {@link RunState#INTERNAL_ERROR}.
 *
 * <p>The vCPU state records the program's {@link #name()}: a destination runs the same program when
 * it was built with one of that name, and refuses the load otherwise.
 */
public interface VcpuProgram {
  /** The name the vCPU state carries: 1 to 64 ASCII characters, not a built-in program's name. */
  String name();

  /** Runs one step on {@code vcpu}'s thread; called again and again while the machine runs. */
  void step(Vcpu vcpu);
}
