package dev.ferry.savevm;

import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;

/**
 * Acts on the commands a destination receives (return path, postcopy). The incoming migration
 * supplies one; {@link #NONE} refuses every command that needs a capability the loader lacks.
 */
@FunctionalInterface
public interface CommandListener {
  void command(StreamCommand command, long offset) throws IOException;

  /** For loads without a return path and without postcopy (files, snapshots). */
  CommandListener NONE =
      (c, offset) -> {
        switch (c) {
          case StreamCommand.OpenReturnPath x ->
              throw new MigrationStreamException("OPEN_RETURN_PATH: this load has no return path", offset);
          case StreamCommand.Ping p ->
              throw new MigrationStreamException("PING " + p.value() + " without an open return path", offset);
          case StreamCommand.Packaged p -> {
            // the package's contents are loaded like the main stream
          }
          default ->
              throw new MigrationStreamException(
                  "command " + c.command() + " needs postcopy, which this load does not do", offset);
        }
      };
}
