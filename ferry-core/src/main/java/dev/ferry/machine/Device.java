package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;

/**
 * A built-in device: plain Java state that a VMState description covers, registered for
 * savevm/migration under {@link #idstr()} and {@link #instanceId()}.
 */
public interface Device {
  /** Registration name in the stream (e.g. {@code cpu}, {@code serial}). */
  String idstr();

  /** Distinguishes devices with the same idstr (the cpu index). */
  default int instanceId() {
    return 0;
  }

  /** This device's registration for savevm and migration (a VMState-described FULL section). */
  SaveStateEntry stateEntry();
}
