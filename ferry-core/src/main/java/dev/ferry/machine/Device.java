package dev.ferry.machine;

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
}
