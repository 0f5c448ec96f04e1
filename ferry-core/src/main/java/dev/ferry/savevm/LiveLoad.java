package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.SectionType;
import java.io.IOException;

/**
 * One load's (one incoming migration's or one snapshot load's) state of a live handler, made by
 * {@link LiveStateHandler#openLoad} before the first section of the stream and {@link #close()
 * closed} when the load ends, well or not (QEMU: what a handler's {@code load_setup} allocates and
 * {@code load_cleanup} frees). The mirror of {@link LiveSave}: the handler itself holds nothing of a
 * load, so one load's options and buffers cannot leak into the next.
 */
public interface LiveLoad extends AutoCloseable {
  /** Reads the body of a START, PART or END section written at {@code version}. */
  void load(MigrationInput in, int version, SectionType type) throws IOException;

  /** Releases what the load took (also after a failed one). Idempotent. */
  @Override
  void close();
}
