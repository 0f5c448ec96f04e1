package dev.ferry.machine;

import dev.ferry.migration.MigrationManager;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.Objects;

/**
 * What {@code stop}, {@code cont}, {@code loadvm} and the end of an incoming migration do to a
 * machine's run state, with QEMU 7.2's rules and words (its {@code qmp_stop}, {@code qmp_cont},
 * {@code load_snapshot} and {@code autostart}). One object per machine, shared by every way of
 * driving it: the QMP backend and the Java API both call these, so an embedder gets the monitor's
 * behaviour without copying it.
 *
 * <ul>
 *   <li><b>autostart.</b> A destination runs the guest once an incoming load completes if the
 *       source was running, unless it was started paused or {@link #stop()} came meanwhile ({@code
 *       stop} in {@code inmigrate} or {@code prelaunch} only clears autostart; {@link #cont()}
 *       there sets it).
 *   <li><b>cont.</b> Refused in a state that needs a reset (a failed vCPU, a half-done load:
 *       "Resetting the Virtual Machine is required"), in {@code finish-migrate} ("Migration is not
 *       finalized yet"), during a save or a restore, and on a source whose guest postcopy moved to
 *       the destination.
 *   <li><b>loadvm.</b> The machine stops, the state loads, and the machine runs on if it ran
 *       before. A load refused before anything was read (bad name, missing file, a migration in
 *       progress) leaves the run state as it was; one that failed half-way leaves {@code
 *       internal-error}, which {@code cont} refuses until a whole state loads.
 *   <li><b>postcopy-paused.</b> A destination whose postcopy stream broke has vCPUs waiting for
 *       pages that may never come: stopping or checking it is refused.
 * </ul>
 *
 * <p>Errors are {@link IllegalStateException}s whose message is the one line a monitor shows.
 * Thread-safe: every rule runs under this object's lock.
 */
public final class RunStateRules {
  /** A load of a whole state, for {@link #loadVm}. */
  @FunctionalInterface
  public interface Load {
    void load() throws IOException;
  }

  private final MachineHost host;
  private final Machine machine;
  private final MigrationManager migration;
  /** Whether the machine runs after an incoming load (QEMU's autostart). */
  private volatile boolean autostart = true;

  /** Made by its host ({@link MachineHost#runStateRules()}): one per machine. */
  RunStateRules(MachineHost host) {
    this.host = Objects.requireNonNull(host, "host");
    this.machine = host.machine();
    this.migration = host.migration();
    host.setPostcopyAutostart(() -> autostart);
  }

  /** Whether an incoming load that completes runs the machine (if its source ran). */
  public boolean autostart() {
    return autostart;
  }

  /** {@code false}: the process was started paused ({@code -S}, {@code --paused}). */
  public void setAutostart(boolean on) {
    autostart = on;
  }

  /** QEMU's {@code stop}: pauses a running machine; in inmigrate/prelaunch it clears autostart. */
  public synchronized void stop() {
    refuseWhilePostcopyPaused();
    RunState s = machine.runState();
    if (s == RunState.INMIGRATE || s == RunState.PRELAUNCH) {
      autostart = false; // as QEMU: stay paused once the incoming state is loaded
      return;
    }
    if (s.isRunning()) {
      machine.stop(RunState.PAUSED); // a vCPU that does not stop in time: one line, machine runs on
    }
  }

  /** QEMU's {@code cont}, with its refusals (see the class comment). */
  public synchronized void cont() {
    OutgoingMigration o = migration.outgoing();
    if (o != null && o.guestMovedAway()) {
      throw new IllegalStateException(
          "the guest now lives on the destination (postcopy moved it there, status "
              + o.state().status().qapiName() + "): this machine's RAM is stale and it must not run again");
    }
    RunState s = machine.runState();
    // QEMU's qmp_cont: a state that needs a reset (here also a failed load, which leaves
    // internal-error) and finish-migrate are refused with QEMU's words; Ferry also refuses the
    // transient save-vm / restore-vm (QEMU never shows them to a monitor command)
    if (s.needsReset()) {
      throw new IllegalStateException(RunState.RESET_REQUIRED);
    }
    switch (s) {
      case RUNNING -> {}
      case INMIGRATE -> autostart = true;
      case FINISH_MIGRATE -> throw new IllegalStateException("Migration is not finalized yet");
      case SAVE_VM, RESTORE_VM ->
          throw new IllegalStateException("The machine cannot run while it is in state " + s.qapiName());
      default -> machine.resume();
    }
  }

  /**
   * A destination in postcopy-paused has vCPUs waiting for pages that may never come: stopping
   * them (or reading RAM for a check) would wait forever, so it is refused.
   *
   * @throws IllegalStateException saying so
   */
  public void refuseWhilePostcopyPaused() {
    if (migration.incomingState().status() == MigrationStatus.POSTCOPY_PAUSED) {
      throw new IllegalStateException(
          "the incoming postcopy migration is paused: part of the guest's RAM never arrived and"
              + " the vCPUs that touched it wait for it, so the machine cannot be stopped or checked");
    }
  }

  /**
   * Refuses a save or load while a migration runs either way ({@code waitingForIncoming}: an
   * incoming migration was started and has not ended).
   */
  public void refuseDuringMigration(boolean waitingForIncoming) {
    refuseWhilePostcopyPaused();
    if (migration.outgoingState().status().isActive()) {
      throw new IllegalStateException("There's a migration process in progress");
    }
    if (machine.runState() == RunState.INMIGRATE || waitingForIncoming) {
      throw new IllegalStateException("Guest is waiting for an incoming migration");
    }
  }

  /**
   * QEMU's {@code loadvm}: stops the machine (restore-vm), runs {@code load}, and runs the machine
   * on if it ran before (else leaves it paused).
   *
   * @throws IllegalStateException a refusal before anything was loaded (run state restored), or a
   *     half-done load's (internal-error stays)
   * @throws NoSuchFileException nothing was loaded: the run state is restored
   * @throws IOException the load failed half-way: internal-error stays
   */
  public synchronized void loadVm(Load load) throws IOException {
    RunState before = machine.runState();
    machine.stop(RunState.RESTORE_VM);
    try {
      load.load();
    } catch (IllegalArgumentException | IllegalStateException e) {
      if (machine.runState() != RunState.INTERNAL_ERROR) {
        restore(before); // refused before anything was loaded
      }
      throw e;
    } catch (NoSuchFileException e) {
      restore(before); // nothing was loaded
      throw e;
    }
    // a whole state loaded: Ferry's reset, so even a machine that needed one may run now
    if (before.isRunning()) {
      machine.resume();
    } else {
      machine.stop(RunState.PAUSED);
    }
  }

  private void restore(RunState before) {
    if (before.isRunning()) {
      machine.resume();
    } else {
      machine.stop(before);
    }
  }

  /**
   * After an incoming load completed: runs the machine if the source ran and autostart holds, else
   * leaves it paused (after a postcopy load the run state was already decided at its switch).
   */
  public synchronized void afterIncoming() {
    host.startAfterLoad(!autostart);
  }
}
