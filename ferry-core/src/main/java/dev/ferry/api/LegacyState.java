package dev.ferry.api;

import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;

/**
 * A device saved by a hand-written pair of functions instead of a VMState description (QEMU's
 * legacy {@code save_state}/{@code load_state}): {@link FerryMachine.Builder#legacyDevice}. Values
 * are big-endian, as {@link DataOutput} writes them and as QEMU's stream carries them. The stream
 * has no length for such a section: {@code load} must read exactly what {@code save} wrote for
 * that version.
 */
public final class LegacyState {
  private LegacyState() {}

  /** Writes the device's state. */
  @FunctionalInterface
  public interface Save {
    /** Writes the state; called with the machine stopped. */
    void save(DataOutput out) throws IOException;
  }

  /** Reads the device's state. */
  @FunctionalInterface
  public interface Load {
    /** Reads state written at {@code version} (at most the device's version). */
    void load(DataInput in, int version) throws IOException;
  }
}
