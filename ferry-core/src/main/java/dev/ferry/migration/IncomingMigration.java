package dev.ferry.migration;

import dev.ferry.savevm.CommandListener;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateLoader;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination side of one migration (QEMU's process_incoming_migration): loads the stream into
 * the registry's entries, answers the return path (PONG, and SHUT at the end), and only after a
 * complete, successful load lets the caller start the machine. A failed load never leaves a
 * half-loaded machine running: the caller discards it.
 */
public final class IncomingMigration {
  private static final Logger LOG = LoggerFactory.getLogger(IncomingMigration.class);

  private final SaveStateRegistry registry;
  private final Configuration expected;
  private final MigrationState state;
  private final StreamReader.Options options;
  private volatile MigrationInput in;
  private volatile LoadCheck check = loader -> {};

  /** A last check of a complete load before it counts as a success (e.g. every section arrived). */
  @FunctionalInterface
  public interface LoadCheck {
    void check(StateLoader loader) throws IOException;
  }

  /** Sets the check run after the stream loaded and before SHUT(0) and "completed". */
  public void setLoadCheck(LoadCheck c) {
    this.check = c;
  }
  private ReturnPath.Writer returnPath;

  public IncomingMigration(
      SaveStateRegistry registry, Configuration expected, MigrationState state, StreamReader.Options options) {
    this.registry = registry;
    this.expected = expected;
    this.state = state;
    this.options = options;
  }

  public MigrationState state() {
    return state;
  }

  /** Bytes read so far. */
  public long receivedBytes() {
    MigrationInput i = in;
    return i == null ? 0 : i.position();
  }

  /**
   * Loads a whole stream from {@code c}. On success the status is completed and the return path
   * (if the source opened one) got SHUT(0); on failure the status is failed, the return path got
   * SHUT(1), and the exception says what and where.
   */
  public StateLoader load(MigrationChannel c) throws IOException {
    state.transitionFromCurrent(MigrationStatus.SETUP, "incoming " + c.peerDescription());
    MigrationInput input = new MigrationInput(c);
    in = input;
    CommandListener commands =
        (cmd, offset) -> {
          switch (cmd) {
            case StreamCommand.OpenReturnPath x -> {
              if (!c.supportsReturnPath()) {
                throw new MigrationStreamException("OPEN_RETURN_PATH, but " + c.peerDescription() + " has no return path", offset);
              }
              synchronized (this) {
                if (returnPath == null) {
                  returnPath = new ReturnPath.Writer(new MigrationOutput(c));
                }
              }
            }
            case StreamCommand.Ping p -> {
              ReturnPath.Writer rp = returnPathOrNull();
              if (rp == null) {
                throw new MigrationStreamException("PING " + p.value() + " without an open return path", offset);
              }
              rp.pong(p.value());
            }
            default -> CommandListener.NONE.command(cmd, offset);
          }
        };
    try {
      state.transitionFromCurrent(MigrationStatus.ACTIVE, "loading");
      StateLoader loader = StateLoader.load(registry, input, options, expected, commands);
      check.check(loader);
      ReturnPath.Writer rp = returnPathOrNull();
      if (rp != null) {
        rp.shut(0);
      }
      state.transitionFromCurrent(MigrationStatus.COMPLETED, "loaded");
      return loader;
    } catch (IOException | RuntimeException e) {
      ReturnPath.Writer rp = returnPathOrNull();
      if (rp != null) {
        try {
          rp.shut(1);
        } catch (IOException ignored) {
          LOG.debug("could not send SHUT(1)", ignored);
        }
      }
      state.transitionFromCurrent(MigrationStatus.FAILED, String.valueOf(e.getMessage()));
      throw e;
    }
  }

  private synchronized ReturnPath.Writer returnPathOrNull() {
    return returnPath;
  }
}
