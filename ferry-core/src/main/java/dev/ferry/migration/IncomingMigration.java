package dev.ferry.migration;

import dev.ferry.savevm.CommandListener;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SaveOptions;
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
  private final SaveOptions loadOptions;
  private volatile StateLoader stateLoader;
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
  /** The connection being read: the first, or the last recovery connection. */
  private volatile MigrationChannel channel;
  /** The first connection (its owner closes it). */
  private volatile MigrationChannel first;
  /** Recovery connections handed in by migrate-recover's listener. */
  private final java.util.concurrent.LinkedBlockingQueue<MigrationChannel> recoveries =
      new java.util.concurrent.LinkedBlockingQueue<>();
  /** migrate-recover was given during this pause (QEMU's postcopy_recover_triggered). */
  private final java.util.concurrent.atomic.AtomicBoolean recoverTriggered = new java.util.concurrent.atomic.AtomicBoolean();
  private volatile PostcopyRun onPostcopyRun;

  /** Starts the machine at POSTCOPY_RUN (the package's device state is loaded, RAM follows). */
  @FunctionalInterface
  public interface PostcopyRun {
    void run(StateLoader loader) throws IOException;
  }

  /**
   * Thrown by {@link #load} when it was interrupted while the postcopy phase was paused (the machine
   * is being closed): the guest ran here with part of its RAM, the status stays postcopy-paused.
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
    this(registry, expected, state, options, SaveOptions.NONE);
  }

  /**
   * @param loadOptions what this load tells the live handlers (e.g. the RAM's load options): each
   *     opens its state of this load with them ({@link dev.ferry.savevm.LiveStateHandler#openLoad})
   */
  public IncomingMigration(
      SaveStateRegistry registry,
      Configuration expected,
      MigrationState state,
      StreamReader.Options options,
      SaveOptions loadOptions) {
    this.registry = registry;
    this.expected = expected;
    this.state = state;
    this.options = options;
    this.loadOptions = loadOptions;
  }

  /** The section loader of this migration once its load began (its live handlers' loads), or null. */
  public StateLoader stateLoader() {
    return stateLoader;
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
    channel = c;
    first = c;
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
            case StreamCommand.RecvBitmap b when postcopy != null -> {
              // QEMU 7.2: only while recovering; the reply is the block's received bitmap
              MigrationStatus now = state.status();
              if (now != MigrationStatus.POSTCOPY_RECOVER) {
                throw new MigrationStreamException(
                    "RECV_BITMAP can only be handled in postcopy-recover (the incoming migration is " + now.qapiName() + ")",
                    offset);
              }
              postcopy.sendReceivedBitmap(b.blockName(), offset);
            }
            case StreamCommand.PostcopyResume r when postcopy != null -> {
              // QEMU 7.2 ignores it outside postcopy-recover
              if (state.status() == MigrationStatus.POSTCOPY_RECOVER) {
                int again = postcopy.resume();
                state.transition(MigrationStatus.POSTCOPY_RECOVER, MigrationStatus.POSTCOPY_ACTIVE, "postcopy resumed");
                LOG.info("postcopy resumed on {}: {} pending page requests sent again", channel.peerDescription(), again);
              } else {
                LOG.warn("POSTCOPY_RESUME ignored in {} (at offset {})", state.status().qapiName(), offset);
              }
            }
            default -> CommandListener.NONE.command(cmd, offset);
          }
        };
    StateLoader loader = new StateLoader(registry, expected, commands).knownMachineTypes(knownMachineTypes);
    stateLoader = loader;
    try {
      state.transitionFromCurrent(MigrationStatus.ACTIVE, "loading");
      loader.openLoads(loadOptions);
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
      MigrationChannel last = channel;
      if (last != c) {
        closeQuietly(last); // a recovery connection (the caller closes the first)
      }
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
      loader.close();
    }
  }

  /**
   * After POSTCOPY_RUN: the machine runs while this thread (QEMU's listen thread) loads the rest of
   * the stream, RAM pages placed as they come. A failure now pauses instead of failing: the guest
   * lives here, with the pages it has, and this thread waits for a recovery connection ({@link
   * #offerRecovery}, from {@code migrate-recover}) on which the same section loop continues.
   */
  private void postcopyPhase(StreamReader first, StateLoader loader) throws IOException {
    PostcopyIncoming pc = postcopy;
    if (pc == null || pc.state() != PostcopyIncoming.State.RUNNING) {
      throw new MigrationStreamException("POSTCOPY_RUN without postcopy");
    }
    onPostcopyRun.run(loader);
    StreamReader reader = first;
    while (true) {
      try {
        if (reader.readSections() != StreamReader.End.EOF) {
          throw new MigrationStreamException("a second POSTCOPY_RUN", reader.input().position());
        }
        // no vmdesc after a postcopy stream's EOF (and the source waits for SHUT: do not peek for one)
        pc.finish();
        break;
      } catch (IOException | RuntimeException e) {
        reader = reader.continueOn(awaitRecovery(pc, e));
      }
    }
    org.HdrHistogram.Histogram h = pc.faultLatencyNs();
    LOG.info(
        "postcopy done: {} faults, {} requests, fault latency p50 {} us, p99 {} us, max {} us; blocktime {} ms, per vCPU {} ms",
        pc.faults(), pc.requestsSent(), h.getValueAtPercentile(50) / 1000, h.getValueAtPercentile(99) / 1000,
        h.getMaxValue() / 1000, pc.blocktimeMs(), java.util.Arrays.toString(pc.vcpuBlocktimeMs()));
  }

  /**
   * Pauses (postcopy-paused, the connection shut in both directions, requests held, vCPUs that
   * touch a missing page parked) and waits for a recovery connection; then postcopy-recover with a
   * new return path on it. Returns the input to go on reading from.
   *
   * @throws PostcopyPausedException when the wait is interrupted (the machine is being closed)
   */
  private MigrationInput awaitRecovery(PostcopyIncoming pc, Exception cause) throws PostcopyPausedException {
    String why =
        "postcopy paused after the guest started here: " + cause.getMessage() + "; " + pc.missingPages()
            + " pages are still missing and the vCPUs that touch them wait; postcopy recovery: migrate-recover URI"
            + " here, then migrate resume=true (migrate -r) on the source";
    pc.pause(why);
    recoverTriggered.set(false);
    state.transitionFromCurrent(MigrationStatus.POSTCOPY_PAUSED, why);
    LOG.warn("{}", why);
    MigrationChannel lost = channel;
    if (lost != null) {
      try {
        lost.shutdown();
      } catch (RuntimeException e) {
        LOG.debug("shutting the lost connection down failed", e);
      }
      if (lost != first) {
        closeQuietly(lost);
      }
    }
    while (true) {
      MigrationChannel next;
      try {
        next = recoveries.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new PostcopyPausedException(why, cause);
      }
      try {
        if (!next.supportsReturnPath()) {
          throw new IOException(next.peerDescription() + " has no return path, which postcopy recovery needs");
        }
        ReturnPath.Writer rp = new ReturnPath.Writer(new MigrationOutput(next));
        synchronized (this) {
          returnPath = rp;
        }
        pc.recover(rp);
        channel = next;
        MigrationInput input = new MigrationInput(next);
        in = input;
        state.transition(MigrationStatus.POSTCOPY_PAUSED, MigrationStatus.POSTCOPY_RECOVER, "recovery from " + next.peerDescription());
        return input;
      } catch (IOException | RuntimeException e) {
        LOG.warn("postcopy recovery connection {} refused: {}", next.peerDescription(), e.getMessage());
        closeQuietly(next);
        recoverTriggered.set(false);
      }
    }
  }

  /**
   * {@code migrate-recover}'s listener is about to start: refused unless this migration is
   * postcopy-paused (QEMU 7.2's texts), and only once per pause.
   *
   * @throws IllegalStateException with QEMU's message
   */
  public void beginRecovery() {
    if (state.status() != MigrationStatus.POSTCOPY_PAUSED) {
      throw new IllegalStateException("Migrate recover can only be run when postcopy is paused.");
    }
    if (!recoverTriggered.compareAndSet(false, true)) {
      throw new IllegalStateException("Migrate recovery is triggered already");
    }
  }

  /** The recovery listener could not start or accept: {@code migrate-recover} may be given again. */
  public void recoveryListenerFailed() {
    recoverTriggered.set(false);
  }

  /**
   * Hands the paused load a new connection from the source ({@code migrate-recover}'s listener
   * accepted it); the load continues on it. Refused (false) unless paused.
   */
  public boolean offerRecovery(MigrationChannel c) {
    if (state.status() != MigrationStatus.POSTCOPY_PAUSED) {
      return false;
    }
    return recoveries.offer(c);
  }

  /**
   * {@code migrate-pause} on the destination: in postcopy-active the connection is shut, so the
   * load pauses. Returns false in any other state.
   */
  public boolean pausePostcopy() {
    if (state.status() != MigrationStatus.POSTCOPY_ACTIVE) {
      return false;
    }
    MigrationChannel c = channel;
    if (c != null) {
      c.shutdown();
    }
    return true;
  }

  private static void closeQuietly(MigrationChannel c) {
    try {
      c.close();
    } catch (IOException | RuntimeException e) {
      LOG.debug("close failed", e);
    }
  }

  private synchronized ReturnPath.Writer returnPathOrNull() {
    return returnPath;
  }
}
