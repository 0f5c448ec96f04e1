/**
 * The guest: {@link dev.ferry.machine.Machine} (RAM blocks + devices + vCPU threads, run state with
 * pause at a step boundary), the built-in devices ({@link dev.ferry.machine.CpuDevice}, {@link
 * dev.ferry.machine.SerialDevice}, {@link dev.ferry.machine.TimerDevice}, {@link
 * dev.ferry.machine.DiskDevice}), the guest programs ({@link dev.ferry.machine.GuestPrograms}:
 * stress, random, fill, workingset, idle) and {@link dev.ferry.machine.StressCheck}, QEMU migration-test's
 * memory check (and the workingset check).
 *
 * <p>Guest programs keep all state in RAM and in their cpu device, so {@code pause()}, reading
 * {@code ramBlocks()} and {@code devices()}, and later {@code resume()} — here or in another
 * process after loading that state — continue the program exactly.
 */
package dev.ferry.machine;
