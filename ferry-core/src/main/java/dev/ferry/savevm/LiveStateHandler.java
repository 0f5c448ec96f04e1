package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import java.io.IOException;
import java.util.function.BooleanSupplier;

/**
 * Iterative ("live") state such as RAM or a disk: a START section at setup, PART sections while
 * the machine runs, an END section once it is stopped (QEMU's SaveVMHandlers for live entries).
 *
 * <p>Each save gets its own {@link LiveSave} from {@link #openSave}, each load its own {@link
 * LiveLoad} from {@link #openLoad}. A handler whose state is small may instead implement the {@code
 * save*} and {@code load*} methods, holding that state itself; the defaults then wrap them, and such
 * a handler takes part in one save and one load at a time.
 */
public interface LiveStateHandler {
  String idstr();

  int instanceId();

  int version();

  default int priority() {
    return 0;
  }

  /**
   * Whether the handler goes on sending after a postcopy switch (QEMU's save_live_complete_postcopy:
   * RAM). The others get their END section at the switch, before the discards.
   */
  default boolean supportsPostcopy() {
    return false;
  }

  /**
   * False skips the handler for the save whose options are {@code options} (e.g. no disk attached,
   * or block migration off for this migration).
   */
  default boolean active(SaveOptions options) {
    return true;
  }

  /**
   * The state of one new save (a migration or a snapshot), set up next by {@link LiveSave#setup}.
   *
   * @throws IllegalStateException when the handler cannot take part in another save now
   */
  default LiveSave openSave(SaveOptions options) {
    LiveStateHandler h = this;
    return new LiveSave() {
      private boolean closed;

      @Override
      public void setup(MigrationOutput out) throws IOException {
        h.saveSetup(out);
      }

      @Override
      public boolean iterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
        return h.saveIterate(out, rateLimited);
      }

      @Override
      public void complete(MigrationOutput out) throws IOException {
        h.saveComplete(out);
      }

      @Override
      public long pendingEstimateBytes() {
        return h.pendingEstimateBytes();
      }

      @Override
      public long pendingExactBytes() {
        return h.pendingExactBytes();
      }

      @Override
      public void close() {
        if (!closed) {
          closed = true;
          h.saveCleanup();
        }
      }
    };
  }

  /** The START body (RAM: the block list); see {@link LiveSave#setup}. */
  default void saveSetup(MigrationOutput out) throws IOException {
    throw new UnsupportedOperationException(idstr() + " saves through openSave");
  }

  /** One PART body; see {@link LiveSave#iterate}. */
  default boolean saveIterate(MigrationOutput out, BooleanSupplier rateLimited) throws IOException {
    throw new UnsupportedOperationException(idstr() + " saves through openSave");
  }

  /** The END body; see {@link LiveSave#complete}. */
  default void saveComplete(MigrationOutput out) throws IOException {
    throw new UnsupportedOperationException(idstr() + " saves through openSave");
  }

  /** See {@link LiveSave#pendingEstimateBytes}. */
  default long pendingEstimateBytes() {
    throw new UnsupportedOperationException(idstr() + " saves through openSave");
  }

  /** See {@link LiveSave#pendingExactBytes}. */
  default long pendingExactBytes() {
    throw new UnsupportedOperationException(idstr() + " saves through openSave");
  }

  /** Releases what setup took (also after a failed or cancelled migration). */
  default void saveCleanup() {}

  /**
   * The state of one new load (an incoming migration or a snapshot load), opened before the first
   * section of the stream; {@code options} holds what this load tells its handlers, one value per
   * type as for a save (e.g. the RAM's load options). The default wraps {@link #loadSetup}, {@link
   * #load} and {@link #loadCleanup}: such a handler takes part in one load at a time.
   */
  default LiveLoad openLoad(SaveOptions options) throws IOException {
    LiveStateHandler h = this;
    h.loadSetup();
    return new LiveLoad() {
      private boolean closed;

      @Override
      public void load(MigrationInput in, int version, SectionType type) throws IOException {
        h.load(in, version, type);
      }

      @Override
      public void close() {
        if (!closed) {
          closed = true;
          h.loadCleanup();
        }
      }
    };
  }

  /** Called once before the first section of an incoming stream; see {@link #openLoad}. */
  default void loadSetup() throws IOException {}

  /** Reads the body of a START, PART or END section written at {@code version}; see {@link LiveLoad#load}. */
  default void load(MigrationInput in, int version, SectionType type) throws IOException {
    throw new UnsupportedOperationException(idstr() + " loads through openLoad");
  }

  /** Called after the load ended, successfully or not; see {@link LiveLoad#close}. */
  default void loadCleanup() {}
}
