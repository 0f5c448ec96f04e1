package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;

/**
 * The machine's virtual clock in nanoseconds: advances with the host's monotonic clock while the
 * machine runs, stands still while it is paused, and does not jump across save/restore or
 * migration. Like QEMU's virtual clock, it is kept as an offset from the host clock while running;
 * {@link #preSave()} stores the current virtual time in {@link #savedClockNs()} (the migrated
 * field) and {@link #postLoad()} rebuilds the clock from it, because a host clock offset means
 * nothing in another process or on another host.
 */
public final class TimerDevice implements Device {
  /** Layout v1: {@code clock_ns} (int64), the virtual time when saved. */
  public static final VMStateDescription<TimerDevice> VMSTATE =
      VMStateDescription.<TimerDevice>builder("timer")
          .version(1)
          .minimumVersion(1)
          .preSave(TimerDevice::preSave)
          .int64("clock_ns", TimerDevice::savedClockNs, TimerDevice::setSavedClockNs)
          .postLoad((t, version) -> t.postLoad())
          .build();

  /** Immutable so that readers on any thread see a consistent pair. */
  private record Clock(boolean running, long value) {} // value: offset when running, frozen ns otherwise

  private volatile Clock clock = new Clock(false, 0);
  private long savedClockNs;

  @Override
  public String idstr() {
    return "timer";
  }

  @Override
  public SaveStateEntry stateEntry() {
    return VMStateEntry.of(idstr(), 0, VMSTATE, this);
  }

  /** Current virtual time. */
  public long nowNs() {
    Clock c = clock;
    return c.running ? System.nanoTime() + c.value : c.value;
  }

  public boolean isRunning() {
    return clock.running;
  }

  /** Starts the clock from where it stands. */
  public synchronized void resume() {
    Clock c = clock;
    if (!c.running) {
      clock = new Clock(true, c.value - System.nanoTime());
    }
  }

  /** Stops the clock at the current virtual time. */
  public synchronized void pause() {
    Clock c = clock;
    if (c.running) {
      clock = new Clock(false, System.nanoTime() + c.value);
    }
  }

  /** Before saving: records the current virtual time in the migrated field. */
  public synchronized void preSave() {
    savedClockNs = nowNs();
  }

  /** After loading: the clock stands at the loaded time (and runs on from there if running). */
  public synchronized void postLoad() {
    clock = clock.running ? new Clock(true, savedClockNs - System.nanoTime()) : new Clock(false, savedClockNs);
  }

  /** The migrated field: virtual time at the last {@link #preSave()} or as loaded. */
  public synchronized long savedClockNs() {
    return savedClockNs;
  }

  public synchronized void setSavedClockNs(long ns) {
    this.savedClockNs = ns;
  }
}
