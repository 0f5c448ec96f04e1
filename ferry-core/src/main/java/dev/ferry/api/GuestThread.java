package dev.ferry.api;

import dev.ferry.machine.Machine;
import java.time.Duration;

/**
 * The embedder's own thread working on guest state: a service thread (a request handler, a worker)
 * that is not a vCPU but must be stopped as one is. It brackets each unit of work with {@link
 * #enterStep()} and {@link #exitStep()}; a pause, a save or a migration's switch-over waits until
 * every thread has left its step and keeps new steps from starting until the machine runs again,
 * so what they see when stopped is consistent and resumes exactly there, here or on another host.
 * Keep steps short and never block inside one (on a socket, a lock held across steps): a stop waits
 * for every open step, up to the machine's stop timeout, and then gives up with the guest running.
 *
 * <p>Guest RAM is reached through the accessors of {@link GuestAccess}: writes are allowed only
 * inside a step and mark their pages dirty for a live migration; reads are allowed at any time.
 * Device state a {@link dev.ferry.vmstate.VMStateDescription} covers must likewise change only
 * inside a step.
 *
 * <p>One handle per thread, made by {@link FerryMachine#openGuestThread()} on the thread that uses
 * it; not thread-safe. Close it when the thread is done.
 */
public final class GuestThread extends GuestAccess implements AutoCloseable {
  private final Machine machine;
  private final Thread owner = Thread.currentThread();
  private boolean inStep;
  private boolean closed;

  GuestThread(Machine machine) {
    super(machine.ram().openMemory());
    this.machine = machine;
  }

  /**
   * Begins a step: waits while the machine is stopped (paused, saving, switching over, loading or
   * migrated away), then returns with the step open.
   *
   * @throws IllegalStateException when the machine is closed, or a step is already open
   * @throws InterruptedException when interrupted while waiting
   */
  public void enterStep() throws InterruptedException {
    if (!tryEnterStep(Duration.ofNanos(Long.MAX_VALUE))) {
      throw new IllegalStateException("unreachable: an unbounded wait timed out");
    }
  }

  /**
   * Begins a step if the machine runs within {@code timeout}; false (no step) otherwise, e.g. on a
   * migration source that stays stopped once its guest moved away.
   *
   * @throws IllegalStateException when the machine is closed, or a step is already open
   * @throws InterruptedException when interrupted while waiting
   */
  public boolean tryEnterStep(Duration timeout) throws InterruptedException {
    checkOwner();
    if (closed) {
      throw new IllegalStateException("guest thread handle is closed");
    }
    if (inStep) {
      throw new IllegalStateException("a step is already open on this guest thread");
    }
    long ns = timeout.compareTo(Duration.ofNanos(Long.MAX_VALUE)) >= 0 ? Long.MAX_VALUE : Math.max(0, timeout.toNanos());
    if (!machine.enterServiceStep(ns)) {
      return false;
    }
    try {
      memory.enterStep();
    } catch (RuntimeException e) {
      machine.exitServiceStep();
      throw e;
    }
    inStep = true;
    return true;
  }

  /** Ends the open step; a stop waiting for it goes on. */
  public void exitStep() {
    checkOwner();
    if (!inStep) {
      throw new IllegalStateException("no step is open on this guest thread");
    }
    inStep = false;
    try {
      memory.exitStep();
    } finally {
      machine.exitServiceStep();
    }
  }

  /** Whether a step is open. */
  public boolean inStep() {
    return inStep;
  }

  @Override
  void checkStep() {
    if (!inStep) {
      throw new IllegalStateException("guest memory is written only inside a step (enterStep ... exitStep)");
    }
  }

  private void checkOwner() {
    if (Thread.currentThread() != owner) {
      throw new IllegalStateException(
          "a guest thread handle belongs to the thread that opened it (" + owner.getName() + ")");
    }
  }

  /** Ends an open step and releases the handle. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    if (inStep) {
      exitStep();
    }
    closed = true;
    memory.close();
  }

  @Override
  public String toString() {
    return "GuestThread[" + owner.getName() + (inStep ? ", in step" : "") + "]";
  }
}
