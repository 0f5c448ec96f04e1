package dev.ferry.api;

import dev.ferry.machine.MemoryDigest;
import java.util.Optional;

/**
 * An exact digest of a stopped machine: every RAM region and the state of every device (QMP's
 * {@code ferry-memory-digest}). Two machines with equal digests hold the same memory and device
 * state: the check every migration test ends with.
 */
public final class StateDigest {
  private final MemoryDigest digest;

  StateDigest(MemoryDigest digest) {
    this.digest = digest;
  }

  /** The digest of all RAM regions, 16 hex digits. */
  public String ram() {
    return digest.ram();
  }

  /** The digest of all device state, 16 hex digits. */
  public String devices() {
    return digest.devices();
  }

  /** Bytes covered: RAM plus device state. */
  public long bytes() {
    return digest.bytes();
  }

  /** Where {@code other} differs first (region and page, or device), or empty when equal. */
  public Optional<String> firstDifference(StateDigest other) {
    return digest.firstDifference(other.digest);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof StateDigest d && digest.equals(d.digest);
  }

  @Override
  public int hashCode() {
    return digest.hashCode();
  }

  @Override
  public String toString() {
    return digest.toString();
  }
}
