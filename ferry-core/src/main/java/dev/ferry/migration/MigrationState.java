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
      if (next == MigrationStatus.FAILED && reason != null) {
        errorDesc = reason;
      }
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
