package dev.ferry.migration;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The status of one side's migration and its ONE transition method (Aeron's Election style, QEMU's
 * migrate_set_state): it checks the move is legal, logs {@code old -> new (reason)}, records the
 * error for {@code error-desc}, and tells the listeners.
 */
public final class MigrationState {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationState.class);

  private final String side;
  private final List<MigrationListener> listeners = new CopyOnWriteArrayList<>();
  private MigrationStatus status = MigrationStatus.NONE;
  private String errorDesc;
  /** The JFR event of the current status, begun when it was entered (null while none). */
  private MigrationEvents.Phase phaseEvent;

  /** @param side "outgoing" or "incoming", for the log */
  public MigrationState(String side) {
    this.side = side;
  }

  public void addListener(MigrationListener l) {
    listeners.add(l);
  }

  public void removeListener(MigrationListener l) {
    listeners.remove(l);
  }

  public synchronized MigrationStatus status() {
    return status;
  }

  /** The error of the last failed migration (QMP error-desc), or null. */
  public synchronized String errorDesc() {
    return errorDesc;
  }

  /**
   * Moves from {@code expected} to {@code next}; does nothing and returns false when the status is
   * no longer {@code expected} (e.g. a cancel got there first).
   *
   * @throws IllegalStateException when the move is not allowed from {@code expected}
   */
  public boolean transition(MigrationStatus expected, MigrationStatus next, String reason) {
    MigrationStatus from;
    synchronized (this) {
      if (status != expected) {
        return false;
      }
      if (!expected.next().contains(next)) {
        throw new IllegalStateException("illegal migration status change " + expected.qapiName() + " -> " + next.qapiName());
      }
      from = status;
      status = next;
      if (next == MigrationStatus.SETUP) {
        errorDesc = null;
      }
      if ((next == MigrationStatus.FAILED || next == MigrationStatus.POSTCOPY_PAUSED) && reason != null) {
        errorDesc = reason;
      }
      phaseEvent(from, next, reason);
    }
    LOG.info("{} migration: {} -> {} ({})", side, from.qapiName(), next.qapiName(), reason);
    for (MigrationListener l : listeners) {
      // a listener is an observer: its failure must not undo or stop the move (the status already
      // changed, and the migration thread's cleanup after a terminal move must still run)
      try {
        l.statusChanged(from, next, reason);
      } catch (RuntimeException | Error e) {
        if (e instanceof VirtualMachineError) {
          throw e;
        }
        LOG.warn("{} migration listener failed on {} -> {}: {}", side, from.qapiName(), next.qapiName(), e.toString(), e);
      }
    }
    return true;
  }

  /**
   * Tells the listeners about {@code shown} without changing the status (QEMU's destination emits
   * {@code MIGRATION {status: setup}} when migrate-recover starts its listener, while its state
   * stays postcopy-paused).
   */
  public void announce(MigrationStatus shown, String reason) {
    MigrationStatus now = status();
    LOG.info("{} migration: {} announced while {} ({})", side, shown.qapiName(), now.qapiName(), reason);
    for (MigrationListener l : listeners) {
      try {
        l.statusChanged(now, shown, reason);
      } catch (RuntimeException e) {
        LOG.warn("{} migration listener failed on {}: {}", side, shown.qapiName(), e.toString(), e);
      }
    }
  }

  /** Replaces error-desc of a postcopy-paused migration (a resume attempt that failed to connect). */
  public synchronized void pausedError(String reason) {
    if (status == MigrationStatus.POSTCOPY_PAUSED) {
      errorDesc = reason;
    }
  }

  /** Moves from whatever the status is to {@code next} if allowed; returns the status before. */
  public MigrationStatus transitionFromCurrent(MigrationStatus next, String reason) {
    while (true) {
      MigrationStatus cur = status();
      if (cur == next || !cur.next().contains(next)) {
        return cur;
      }
      if (transition(cur, next, reason)) {
        return cur;
      }
    }
  }

  /** Ends the JFR event of {@code from} and begins the one of {@code next} (terminal: instant). */
  private void phaseEvent(MigrationStatus from, MigrationStatus next, String reason) {
    if (phaseEvent != null) {
      phaseEvent.end();
      phaseEvent.nextPhase = next.qapiName();
      phaseEvent.reason = reason;
      phaseEvent.commit();
      phaseEvent = null;
    }
    MigrationEvents.Phase e = new MigrationEvents.Phase();
    e.side = side;
    e.phase = next.qapiName();
    e.begin();
    if (next.next().isEmpty() || next == MigrationStatus.COMPLETED || next == MigrationStatus.FAILED
        || next == MigrationStatus.CANCELLED) {
      e.reason = reason;
      e.commit();
    } else {
      phaseEvent = e;
    }
  }

  void firePass(long pass) {
    for (MigrationListener l : listeners) {
      try {
        l.pass(pass);
      } catch (RuntimeException e) {
        LOG.warn("{} migration listener failed on pass {}: {}", side, pass, e.toString(), e);
      }
    }
  }
}
