/**
 * Framing and orchestration of whole-machine state (QEMU's savevm.c): the {@link
 * dev.ferry.savevm.SaveStateRegistry} of device entries ({@link dev.ferry.savevm.SaveStateEntry},
 * VMState-described or {@link dev.ferry.savevm.LegacySaveStateEntry legacy}) and live handlers
 * ({@link dev.ferry.savevm.LiveStateHandler}); the {@link dev.ferry.savevm.StreamWriter} and its
 * mirror {@link dev.ferry.savevm.StreamReader}, which reports to a {@link
 * dev.ferry.savevm.StreamHandler}; {@link dev.ferry.savevm.StateSaver} (the save phases) and
 * {@link dev.ferry.savevm.StateLoader} (the destination's dispatch and checks).
 */
package dev.ferry.savevm;
