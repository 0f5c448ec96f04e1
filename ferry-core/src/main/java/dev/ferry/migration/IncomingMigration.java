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
  private volatile PostcopyIncoming postcopy;
  private volatile PostcopyRun onPostcopyRun;

  /** Starts the machine at POSTCOPY_RUN (the package's device state is loaded, RAM follows). */
  @FunctionalInterface
  public interface PostcopyRun {
    void run(StateLoader loader) throws IOException;
  }

  /**
   * Thrown by {@link #load} when the stream broke after POSTCOPY_RUN: the guest runs here with part
   * of its RAM, the status is postcopy-paused, and the machine must be kept (not discarded).
   */
  public static final class PostcopyPausedException extends IOException {
    PostcopyPausedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * Accepts postcopy (postcopy-ram is on here): {@code p} follows the commands, {@code onRun}
   * starts the machine at POSTCOPY_RUN. Without it, POSTCOPY_ADVISE is refused.
   */
  public void setPostcopy(PostcopyIncoming p, PostcopyRun onRun) {
    this.postcopy = p;
    this.onPostcopyRun = onRun;
  }

  /** The machine types this build knows, named when the stream's type is none of them (see {@link StateLoader#knownMachineTypes}). */
  public void setKnownMachineTypes(java.util.List<String> names) {
    this.knownMachineTypes = java.util.List.copyOf(names);
  }

  private volatile java.util.List<String> knownMachineTypes = java.util.List.of();

  /** The postcopy side of this load, or null. */
  public PostcopyIncoming postcopy() {
    return postcopy;
  }

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
            case StreamCommand.PostcopyAdvise a -> {
              PostcopyIncoming pc = postcopy;
              if (pc == null) {
                throw new MigrationStreamException(
                    "POSTCOPY_ADVISE, but the postcopy-ram capability is off on this side", offset);
              }
              pc.advise(a, offset);
            }
            case StreamCommand.RamDiscard d when postcopy != null -> postcopy.discard(d, offset);
            case StreamCommand.PostcopyListen l when postcopy != null -> {
              postcopy.listen(returnPathOrNull(), offset);
              state.transitionFromCurrent(MigrationStatus.POSTCOPY_ACTIVE, "postcopy listen");
            }
            case StreamCommand.PostcopyRun r when postcopy != null -> postcopy.run(offset);
            default -> CommandListener.NONE.command(cmd, offset);
          }
        };
    StateLoader loader = new StateLoader(registry, expected, commands).knownMachineTypes(knownMachineTypes);
    try {
      state.transitionFromCurrent(MigrationStatus.ACTIVE, "loading");
      for (SaveStateRegistry.Live l : registry.live()) {
        l.handler().loadSetup();
      }
      StreamReader reader = new StreamReader(input, loader, options);
      reader.readHeader();
      reader.readConfiguration();
      if (reader.readSections() == StreamReader.End.POSTCOPY_RUN) {
        check.check(loader);
        postcopyPhase(reader, loader);
      } else {
        reader.readTail();
        check.check(loader);
      }
      ReturnPath.Writer rp = returnPathOrNull();
      if (rp != null) {
        rp.shut(0);
      }
      state.transitionFromCurrent(MigrationStatus.COMPLETED, "loaded");
      return loader;
    } catch (PostcopyPausedException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      PostcopyIncoming pc = postcopy;
      if (pc != null) {
        pc.finishAfterFailure();
      }
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
    } finally {
      for (SaveStateRegistry.Live l : registry.live()) {
        l.handler().loadCleanup();
      }
    }
  }

  /**
   * After POSTCOPY_RUN: the machine runs while this thread (QEMU's listen thread) loads the rest of
   * the stream, RAM pages placed as they come. A failure now pauses instead of failing: the guest
   * lives here, with the pages it has.
   */
  private void postcopyPhase(StreamReader reader, StateLoader loader) throws IOException {
    PostcopyIncoming pc = postcopy;
    if (pc == null || pc.state() != PostcopyIncoming.State.RUNNING) {
      throw new MigrationStreamException("POSTCOPY_RUN without postcopy");
    }
    onPostcopyRun.run(loader);
    try {
      if (reader.readSections() != StreamReader.End.EOF) {
        throw new MigrationStreamException("a second POSTCOPY_RUN", reader.input().position());
      }
      // no vmdesc after a postcopy stream's EOF (and the source waits for SHUT: do not peek for one)
      pc.finish();
      org.HdrHistogram.Histogram h = pc.faultLatencyNs();
      LOG.info(
          "postcopy done: {} faults, {} requests, fault latency p50 {} us, p99 {} us, max {} us; blocktime {} ms, per vCPU {} ms",
          pc.faults(), pc.requestsSent(), h.getValueAtPercentile(50) / 1000, h.getValueAtPercentile(99) / 1000,
          h.getMaxValue() / 1000, pc.blocktimeMs(), java.util.Arrays.toString(pc.vcpuBlocktimeMs()));
    } catch (IOException | RuntimeException e) {
      String why =
          "postcopy failed after the guest started here: " + e.getMessage() + "; " + pc.missingPages()
              + " pages never arrived and the vCPUs that touch them wait; postcopy recovery"
              + " (migrate-recover) is not implemented in Ferry";
      pc.pause(why);
      state.transitionFromCurrent(MigrationStatus.POSTCOPY_PAUSED, why);
      throw new PostcopyPausedException(why, e);
    }
  }

  private synchronized ReturnPath.Writer returnPathOrNull() {
    return returnPath;
  }
}
