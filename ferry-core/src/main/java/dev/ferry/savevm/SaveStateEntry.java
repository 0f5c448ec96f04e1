package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import java.io.IOException;

/**
 * One piece of non-iterative device state: a FULL section in the stream (QEMU's SaveStateEntry
 * with a VMSD or a legacy save/load pair). VMState-described devices get one from the vmstate
 * package; a legacy device implements save and load by hand.
 */
public interface SaveStateEntry {
  /** Registration name, at most 255 bytes (e.g. {@code cpu}, {@code 0000:00:01.1/ide}). */
  String idstr();

  /** Distinguishes entries with the same idstr. */
  int instanceId();

  /** Version written in the section header; loads accept at most this. */
  int version();

  /**
   * Version written in the section header of the next save (default {@link #version()}); an entry
   * may write an older version when its state fits that layout, so older builds can load it.
   */
  default int saveVersion() {
    return version();
  }

  /** Higher priorities are saved and loaded first (QEMU's MigrationPriority). */
  default int priority() {
    return 0;
  }

  /** False omits the section entirely (a VMSD whose top-level {@code needed} is false). */
  default boolean needed() {
    return true;
  }

  /**
   * The VMState description this entry saves and loads with, for static dumps ({@code ferry vmstate
   * dump}); null (the default) for an entry with hand-written save and load.
   */
  default dev.ferry.vmstate.VMStateDescription<?> vmstateDescription() {
    return null;
  }

  /**
   * Writes the section body (no header, no footer) and describes it for the vmdesc into {@code
   * desc}: an open JSON object that already holds {@code "name"} and {@code "instance_id"}; the
   * entry adds the rest ({@code "vmsd_name", "version", "fields", ...} or {@code "size", "fields"})
   * and leaves the object open.
   */
  void save(MigrationOutput out, QemuJsonWriter desc) throws IOException;

  /** Reads the section body written at {@code version} (already checked to be at most {@link #version()}). */
  void load(MigrationInput in, int version) throws IOException;
}
