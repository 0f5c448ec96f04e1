package dev.ferry.api;

import dev.ferry.machine.Machine;
import dev.ferry.ram.GuestMemory;
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
 * <p>Guest RAM is reached through the accessors here (region by {@link Region#index()}, byte
 * offset, multi-byte values little-endian): writes are allowed only inside a step and mark their
 * pages dirty for a live migration; reads are allowed at any time. Device state a {@link
 * dev.ferry.vmstate.VMStateDescription} covers must likewise change only inside a step.
 *
 * <p>One handle per thread, made by {@link FerryMachine#openGuestThread()} on the thread that uses
 * it; not thread-safe. Close it when the thread is done.
 */
public final class GuestThread implements AutoCloseable {
  private final Machine machine;
  private final GuestMemory memory;
  private final Thread owner = Thread.currentThread();
  private boolean inStep;
  private boolean closed;

  GuestThread(Machine machine) {
    this.machine = machine;
    this.memory = machine.ram().openMemory();
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

  // ---------------------------------------------------------------- reads (any time)

  /** The byte at {@code offset} of region {@code region}. */
  public byte getByte(int region, long offset) {
    return memory.getByte(region, offset);
  }

  /** The little-endian int at {@code offset} (any alignment). */
  public int getInt(int region, long offset) {
    return memory.getInt(region, offset);
  }

  /** The little-endian long at {@code offset} (any alignment). */
  public long getLong(int region, long offset) {
    return memory.getLong(region, offset);
  }

  /** Copies {@code length} bytes at {@code offset} into {@code dst}. */
  public void read(int region, long offset, byte[] dst, int dstOffset, int length) {
    memory.read(region, offset, dst, dstOffset, length);
  }

  // ---------------------------------------------------------------- writes (inside a step)

  /** Stores a byte. */
  public void putByte(int region, long offset, byte value) {
    checkStep();
    memory.putByte(region, offset, value);
  }

  /** Stores a little-endian int. */
  public void putInt(int region, long offset, int value) {
    checkStep();
    memory.putInt(region, offset, value);
  }

  /** Stores a little-endian long. */
  public void putLong(int region, long offset, long value) {
    checkStep();
    memory.putLong(region, offset, value);
  }

  /** Copies {@code length} bytes of {@code src} to {@code offset}. */
  public void write(int region, long offset, byte[] src, int srcOffset, int length) {
    checkStep();
    memory.write(region, offset, src, srcOffset, length);
  }

  /** Sets {@code length} bytes at {@code offset} to {@code value}. */
  public void fill(int region, long offset, long length, byte value) {
    checkStep();
    memory.fill(region, offset, length, value);
  }

  /** Copies within guest memory (overlapping ranges behave as if through a temporary buffer). */
  public void copy(int srcRegion, long srcOffset, int dstRegion, long dstOffset, long length) {
    checkStep();
    memory.copy(srcRegion, srcOffset, dstRegion, dstOffset, length);
  }

  private void checkStep() {
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
