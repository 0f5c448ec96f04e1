package dev.ferry.savevm;

import dev.ferry.stream.MigrationOutput;
import java.io.IOException;
import java.util.function.BooleanSupplier;

/**
 * One save's (one migration's or one snapshot's) state of a live handler, made by {@link
 * LiveStateHandler#openSave} when the save sets up and {@link #close() closed} when it ends, well
 * or not (QEMU: what a handler's {@code save_setup} allocates and {@code save_cleanup} frees). The
 * handler itself holds nothing of a save, so a save's state cannot leak into another's.
 */
public interface LiveSave extends AutoCloseable {
  /** The START body (RAM: the block list). */
  void setup(MigrationOutput out) throws IOException;

  /**
   * One PART body while the machine runs. Sends until {@code rateLimited} says stop, a pass found
   * nothing more, or the handler yields for latency.
   *
   * @return true when nothing is pending right now (it may get dirty again)
   */
  boolean iterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException;

  /** The END body, machine stopped: everything still pending, without rate limit. */
  void complete(MigrationOutput out) throws IOException;

  /** Cheap estimate of bytes still to send (QEMU's state_pending_estimate). */
  long pendingEstimateBytes();

  /** Exact bytes still to send; may sync dirty logs (QEMU's state_pending_exact). */
  long pendingExactBytes();

  /**
   * Whether a postcopy switch may happen now. A precopy-only handler with much left (block
   * migration: its bulk phase or a large dirty set) says no, and the switch waits for it.
   */
  default boolean readyForPostcopy() {
    return true;
  }

  /** Releases what the save took (also after a failed or cancelled one). Idempotent. */
  @Override
  void close();
}
