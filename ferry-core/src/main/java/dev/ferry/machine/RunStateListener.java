package dev.ferry.machine;

/**
 * Told of every run-state change, after it took effect (vCPUs already stopped or already released),
 * on the thread that made the change. The monitor turns these into STOP and RESUME events.
 */
@FunctionalInterface
public interface RunStateListener {
  void runStateChanged(RunState from, RunState to);
}
