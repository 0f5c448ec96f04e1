package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The run state the source had when it saved, carried in QEMU's own {@code globalstate} section
 * (version 1: be32 size = name length + 1, then a 100-byte NUL-padded run-state name), so that the
 * destination starts the machine only if the source was running, and QEMU's tools read it.
 */
final class GlobalState {
  static final int RUNSTATE_BYTES = 100;

  private final byte[] runstate = new byte[RUNSTATE_BYTES];
  private long size;

  static final VMStateDescription<GlobalState> VMSTATE =
      VMStateDescription.<GlobalState>builder("globalstate")
          .version(1)
          .minimumVersion(1)
          .uint32("size", g -> g.size, (g, v) -> g.size = v)
          .buffer("runstate", RUNSTATE_BYTES, g -> g.runstate)
          .postLoad((g, version) -> g.validate())
          .build();

  /** Records {@code state} for the next save. */
  void set(RunState state) {
    byte[] name = state.qapiName().getBytes(StandardCharsets.US_ASCII);
    Arrays.fill(runstate, (byte) 0);
    System.arraycopy(name, 0, runstate, 0, name.length);
    size = name.length + 1;
  }

  /** The loaded run state. */
  RunState get() {
    int n = 0;
    while (n < RUNSTATE_BYTES - 1 && runstate[n] != 0) {
      n++;
    }
    return RunState.fromQapiName(new String(runstate, 0, n, StandardCharsets.US_ASCII));
  }

  private void validate() {
    runstate[RUNSTATE_BYTES - 1] = 0;
    try {
      get();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("globalstate: invalid run state " + e.getMessage(), e);
    }
  }

  SaveStateEntry entry() {
    return VMStateEntry.of("globalstate", 0, VMSTATE, this);
  }
}
