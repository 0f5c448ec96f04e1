package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import java.io.IOException;
import java.util.function.BooleanSupplier;

/**
 * Iterative ("live") state such as RAM or a disk: a START section at setup, PART sections while
 * the machine runs, an END section once it is stopped (QEMU's SaveVMHandlers for live entries).
 */
public interface LiveStateHandler {
  String idstr();

  int instanceId();

  int version();

  default int priority() {
    return 0;
  }

  /** False skips the handler for this migration (e.g. no disk attached). */
  default boolean active() {
    return true;
  }

  /**
   * Whether the handler goes on sending after a postcopy switch (QEMU's save_live_complete_postcopy:
   * RAM). The others get their END section at the switch, before the discards.
   */
  default boolean supportsPostcopy() {
    return false;
  }

  /** The START body (RAM: the block list). */
  void saveSetup(MigrationOutput out) throws IOException;

  /**
   * One PART body while the machine runs. Sends until {@code rateLimited} says stop, a pass found
   * nothing more, or the handler yields for latency.
   *
   * @return true when the handler has nothing pending right now (it may get dirty again)
   */
  boolean saveIterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException;

  /** The END body, machine stopped: everything still pending, without rate limit. */
  void saveComplete(MigrationOutput out) throws IOException;

  /** Cheap estimate of bytes still to send (QEMU's state_pending_estimate). */
  long pendingEstimateBytes();

  /** Exact bytes still to send; may sync dirty logs (QEMU's state_pending_exact). */
  long pendingExactBytes();

  /** Releases what setup took (also after a failed or cancelled migration). */
  default void saveCleanup() {}

  /** Called once before the first section of an incoming stream. */
  default void loadSetup() throws IOException {}

  /** Reads the body of a START, PART or END section written at {@code version}. */
  void load(MigrationInput in, int version, SectionType type) throws IOException;

  /** Called after the load ended, successfully or not. */
  default void loadCleanup() {}
}
