package dev.ferry.machine;

import dev.ferry.ram.DirtyLog;
import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.GuestRam;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running machine: RAM blocks, devices, and vCPU threads that run a guest program in steps.
 *
 * <p>A built machine is in {@link RunState#PRELAUNCH} with its vCPUs parked; {@link #resume()}
 * runs them. {@link #pause()} (or {@link #stop(RunState)} with another stopped state such as
 * {@code finish-migrate}) returns only once every vCPU has finished its current step and parked:
 * RAM and devices are then a consistent image that save/migration code may read, and {@link
 * #resume()} continues exactly there. Nothing else ever blocks a vCPU (a postcopy page fault will).
 *
 * <p>For save and migration: {@link #ram()} (blocks, dirty log), {@link #ramBlocks()}, {@link
 * #devices()}.
 */
public final class Machine implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Machine.class);

  private final GuestRam ram;
  private final MachineType machineType;
  private final List<CpuDevice> cpus;
  private final SerialDevice serial;
  private final TimerDevice timer;
  private final DiskDevice disk;
  /** Raw disk images by device name ({@code --drive}), in the order given. */
  private final List<dev.ferry.block.DiskImage> drives;
  private final List<Device> devices;
  /** Devices the embedder added ({@link Builder#device}), saved after the built-in ones. */
  private final List<SaveStateEntry> userEntries;
  /** The guest program and its options: replaced by a load (the program travels with the state). */
  private volatile GuestProgram program;
  private volatile ProgramOptions options;
  /** Refuse a loaded state that names another program (e.g. {@code ferry run --program} given). */
  private final boolean programPinned;
  private final List<Thread> vcpuThreads = new ArrayList<>();
  private final List<RunStateListener> listeners = new CopyOnWriteArrayList<>();

  /** Serialises run-state transitions, listeners included. */
  private final ReentrantLock transitionLock = new ReentrantLock();
  /** Guards the vCPU rendezvous below. */
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition parkedChanged = lock.newCondition();
  private volatile boolean pauseRequested = true;
  private volatile boolean shutdown;
  private int parkedVcpus;
  /** Which vCPUs are parked now (by cpu index), to name the ones a stop waits for. */
  private final boolean[] parkedFlags;
  private final Duration stopTimeout;
  private volatile RunState state = RunState.PRELAUNCH;
  /** Auto-converge's CPU throttle in percent, 0 when none (see {@link CpuThrottle}). */
  private volatile int cpuThrottlePercent;
  private volatile Throwable vcpuFailure;

  /** Commits RAM in the background when built with {@code memPrealloc}; null otherwise. */
  private volatile Thread preallocThread;
  /** Set by {@link #close()}: the preallocation thread stops between chunks. */
  private volatile boolean closing;

  /** Waits until a {@code memPrealloc} machine's RAM is committed (at once otherwise). */
  public void awaitRamPreallocated() throws InterruptedException {
    Thread t = preallocThread;
    if (t != null) {
      t.join();
    }
  }

  private Machine(Builder b) {
    this.ram = new GuestRam(b.blocks());
    this.program = b.program;
    this.options = b.options;
    this.programPinned = b.pinProgram;
    this.machineType = b.machineType;
    CpuDevice.Layout layout = b.cpuLayout != null ? b.cpuLayout : CpuDevice.Layout.configuredOr(machineType.cpuLayout());
    List<CpuDevice> cpuList = new ArrayList<>();
    for (int i = 0; i < b.vcpus; i++) {
      cpuList.add(new CpuDevice(i, program.name(), layout));
    }
    cpuList.forEach(c -> c.setProgramOptions(options));
    this.cpus = List.copyOf(cpuList);
    this.parkedFlags = new boolean[cpus.size()];
    this.stopTimeout = b.stopTimeout;
    ram.dirtyLog().setStepWaitLimit(stopTimeout);
    this.serial = new SerialDevice(b.serialSink != null ? b.serialSink : OutputStream.nullOutputStream());
    this.timer = new TimerDevice();
    this.disk = b.disk;
    this.drives = List.copyOf(b.drives);
    List<Device> all = new ArrayList<>(cpus);
    all.add(serial);
    all.add(timer);
    if (disk != null) {
      all.add(disk);
    }
    for (int i = 0; i < drives.size(); i++) {
      all.add(new DriveDevice(i, drives.get(i)));
    }
    this.devices = List.copyOf(all);
    this.userEntries = List.copyOf(b.userEntries);
    for (CpuDevice cpu : cpus) {
      Thread t = Thread.ofPlatform().name("vcpu-" + cpu.index()).daemon(true).unstarted(() -> runVcpu(cpu));
      vcpuThreads.add(t);
    }
    vcpuThreads.forEach(Thread::start);
    if (b.memPrealloc) {
      preallocThread = Thread.ofPlatform()
          .name("ram-prealloc")
          .daemon(true)
          .start(
              () -> {
                try {
                  for (RamBlock block : ram.blocks()) {
                    if (closing) {
                      return;
                    }
                    b.preallocator.accept(block, () -> closing);
                  }
                } catch (RuntimeException e) {
                  LOG.warn("preallocating guest RAM failed: {}", e.toString());
                }
              });
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  // ---------------------------------------------------------------- parts

  /** The machine type this machine was built as (its name travels in the configuration section). */
  public MachineType machineType() {
    return machineType;
  }

  public GuestRam ram() {
    return ram;
  }

  public List<RamBlock> ramBlocks() {
    return ram.blocks();
  }

  public DirtyLog dirtyLog() {
    return ram.dirtyLog();
  }

  /** Every device in registration order: cpus, serial, timer, disk (if any). */
  public List<Device> devices() {
    return devices;
  }

  /**
   * One savevm/migration entry per device, in {@link #devices()} order: {@code cpu} (instance =
   * cpu index), {@code serial}, {@code timer}, {@code disk}. Save and load them with the machine
   * stopped.
   */
  public List<SaveStateEntry> stateEntries() {
    List<SaveStateEntry> all = new ArrayList<>(devices.stream().map(Device::stateEntry).toList());
    all.addAll(userEntries);
    return all;
  }

  public List<CpuDevice> cpus() {
    return cpus;
  }

  public CpuDevice cpu(int index) {
    return cpus.get(index);
  }

  /** The JVM thread id of each vCPU's thread, by CPU index (QMP {@code query-cpus-fast}). */
  public List<Long> vcpuThreadIds() {
    return vcpuThreads.stream().map(Thread::threadId).toList();
  }

  public SerialDevice serial() {
    return serial;
  }

  public TimerDevice timer() {
    return timer;
  }

  /** The disk, or null when the machine has none. */
  public DiskDevice disk() {
    return disk;
  }

  /** The raw disk images attached with {@link Builder#drive}, in order (empty without any). */
  public List<dev.ferry.block.DiskImage> drives() {
    return drives;
  }

  /** The program the vCPUs run: the one built with, or the one the last loaded state named. */
  public GuestProgram program() {
    return program;
  }

  public ProgramOptions programOptions() {
    return options;
  }

  /** Whether a loaded state must name this machine's program (see {@link Builder#pinProgram}). */
  public boolean programPinned() {
    return programPinned;
  }

  /**
   * After a complete load, before the machine runs: the guest program is state, as the code in a
   * real guest's RAM is, so the machine runs the program the loaded cpu state names, with the
   * options the state carries ({@code cpu/program}; without it, this machine's own). A pinned
   * machine refuses a state that names another program; an unknown program is refused too.
   *
   * @throws MigrationStreamException naming both programs
   */
  public void adoptLoadedProgram() throws MigrationStreamException {
    String name = cpus.getFirst().programName();
    for (CpuDevice c : cpus) {
      if (!c.programName().equals(name)) {
        throw new MigrationStreamException("the loaded cpus run different programs: cpu 0 runs '" + name
            + "', cpu " + c.index() + " runs '" + c.programName() + "'");
      }
    }
    GuestProgram p = program;
    if (!name.equals(p.name())) {
      if (programPinned) {
        throw new MigrationStreamException("program mismatch: the stream's guest runs program '" + name
            + "', this machine was started with program '" + p.name() + "'");
      }
      try {
        p = GuestPrograms.byName(name);
      } catch (IllegalArgumentException e) {
        throw new MigrationStreamException("the stream's guest runs program '" + name + "', which this machine cannot run: " + e.getMessage());
      }
    }
    ProgramOptions o = cpus.getFirst().loadedProgramOptions(options);
    if (p != program || !o.equals(options)) {
      LOG.info("running the loaded guest's program {} ({})", p.name(), o);
    }
    program = p;
    options = o;
    for (CpuDevice c : cpus) {
      c.setProgramOptions(o);
    }
  }

  // ---------------------------------------------------------------- run state

  public RunState runState() {
    return state;
  }

  public boolean isRunning() {
    return state.isRunning();
  }

  /** The index of the vCPU that {@code t} runs, or -1 when it is no vCPU thread of this machine. */
  public int vcpuIndexOf(Thread t) {
    return vcpuThreads.indexOf(t);
  }

  /** The error that stopped a vCPU (state {@code internal-error}), or null. */
  public Throwable vcpuFailure() {
    return vcpuFailure;
  }

  public void addRunStateListener(RunStateListener listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
  }

  public void removeRunStateListener(RunStateListener listener) {
    listeners.remove(listener);
  }

  /**
   * Throttles every vCPU to run {@code 100 - percent}% of the time (auto-converge), in {@value
   * CpuThrottle#SLICE_MS} ms slices; 0 lifts it at once (a sleeping vCPU wakes within {@value
   * CpuThrottle#CHECK_MS} ms).
   *
   * @throws IllegalArgumentException outside 0..99
   */
  public void setCpuThrottle(int percent) {
    if (percent < 0 || percent > 99) {
      throw new IllegalArgumentException("CPU throttle must be 0..99 percent, got " + percent);
    }
    cpuThrottlePercent = percent;
  }

  /** The CPU throttle in percent, 0 when none. */
  public int cpuThrottle() {
    return cpuThrottlePercent;
  }

  /** Same as {@code stop(RunState.PAUSED)}. */
  public void pause() {
    stop(RunState.PAUSED);
  }

  /** How long {@link #stop(RunState)} waits for the vCPUs (see {@link Builder#stopTimeout}). */
  public Duration stopTimeout() {
    return stopTimeout;
  }

  /**
   * Stops the vCPUs at a step boundary (waiting for each to finish its current step) and the
   * virtual clock, then enters {@code to}. On an already stopped machine only the state changes
   * (e.g. {@code paused -> postmigrate}).
   *
   * <p>Waits at most {@link #stopTimeout()}; a vCPU whose step does not return by then, or an
   * interrupt of the caller, leaves the machine running as it was (see {@link #stop(RunState, long,
   * TimeUnit)}) and throws an {@link IllegalStateException} saying which vCPU (the interrupt
   * status is kept).
   */
  public void stop(RunState to) {
    try {
      stop(to, stopTimeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      throw new IllegalStateException(e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while stopping the vCPUs; the machine keeps running", e);
    }
  }

  /**
   * {@link #stop(RunState)} with a deadline, interruptible: when some vCPU has not finished its
   * step within {@code timeout} (a guest step that never returns) or the caller is interrupted (a
   * {@code migrate_cancel}), the vCPUs that did park run on, the run state stays what it was, and
   * this throws.
   *
   * @throws TimeoutException naming the vCPUs that did not stop in time
   * @throws InterruptedException when interrupted while waiting
   */
  public void stop(RunState to, long timeout, TimeUnit unit) throws TimeoutException, InterruptedException {
    Objects.requireNonNull(to, "to");
    if (to.isRunning()) {
      throw new IllegalArgumentException("stop into " + to + "; use resume()");
    }
    checkNotVcpu();
    long timeoutNs = unit.toNanos(timeout);
    long deadlineNs = System.nanoTime() + timeoutNs;
    if (!transitionLock.tryLock(timeout, unit)) {
      throw new TimeoutException("another run-state change did not finish within " + unit.toMillis(timeout) + " ms");
    }
    try {
      RunState from = state;
      if (from.isRunning()) {
        parkAllVcpus(deadlineNs, timeoutNs);
        timer.pause();
        serial.flush();
      }
      changeState(from, to);
    } finally {
      transitionLock.unlock();
    }
  }

  /**
   * Runs the vCPUs from where they stopped (no-op when running).
   *
   * @throws IllegalStateException when closed, or in a state that {@linkplain RunState#needsReset()
   *     needs a reset} (a failed vCPU or a half-done load: load a whole state first)
   */
  public void resume() {
    checkNotVcpu();
    transitionLock.lock();
    try {
      RunState from = state;
      if (from.isRunning()) {
        return;
      }
      if (shutdown) {
        throw new IllegalStateException("machine is closed");
      }
      if (from.needsReset()) {
        throw new IllegalStateException(RunState.RESET_REQUIRED + " (state " + from.qapiName() + ")");
      }
      timer.resume();
      lock.lock();
      try {
        pauseRequested = false;
        parkedChanged.signalAll();
      } finally {
        lock.unlock();
      }
      changeState(from, RunState.RUNNING);
    } finally {
      transitionLock.unlock();
    }
  }

  private void changeState(RunState from, RunState to) {
    state = to;
    if (from != to) {
      LOG.debug("run state {} -> {}", from, to);
      for (RunStateListener l : listeners) {
        try {
          l.runStateChanged(from, to);
        } catch (RuntimeException e) {
          LOG.warn("run-state listener failed on {} -> {}", from, to, e);
        }
      }
    }
  }

  /**
   * Asks every vCPU to park at its next step boundary and waits until all live ones did, or until
   * {@code deadlineNs} ({@link System#nanoTime()}; {@code timeoutNs} is for the message) or an
   * interrupt: then the request is withdrawn
   * (the parked vCPUs run on; the machine was running and stays so) and this throws.
   */
  private void parkAllVcpus(long deadlineNs, long timeoutNs) throws TimeoutException, InterruptedException {
    lock.lock();
    try {
      pauseRequested = true;
      vcpuThreads.forEach(LockSupport::unpark); // cut idle halts short
      boolean ok = false;
      try {
        while (parkedVcpus < liveVcpuCount() || serviceSteps > 0) {
          long leftNs = deadlineNs - System.nanoTime();
          if (leftNs <= 0) {
            throw new TimeoutException(stuckVcpus() + " did not stop within "
                + TimeUnit.NANOSECONDS.toMillis(timeoutNs) + " ms (a guest step that does not return)");
          }
          parkedChanged.awaitNanos(Math.min(leftNs, 100_000_000L));
        }
        ok = true;
      } finally {
        if (!ok && state.isRunning()) {
          pauseRequested = false;
          parkedChanged.signalAll();
        }
      }
    } finally {
      lock.unlock();
    }
  }

  /** "vCPU 0" or "vCPUs 1, 3": the live ones not parked. Called with {@link #lock} held. */
  private String stuckVcpus() {
    List<String> stuck = new ArrayList<>();
    for (int i = 0; i < vcpuThreads.size(); i++) {
      if (vcpuThreads.get(i).isAlive() && !parkedFlags[i]) {
        stuck.add(Integer.toString(i));
      }
    }
    String vcpus = stuck.isEmpty() ? "" : (stuck.size() == 1 ? "vCPU " : "vCPUs ") + String.join(", ", stuck);
    if (serviceSteps == 0) {
      return vcpus;
    }
    String service = serviceSteps + (serviceSteps == 1 ? " service thread step" : " service thread steps");
    return vcpus.isEmpty() ? service : vcpus + " and " + service;
  }

  private int liveVcpuCount() {
    int n = 0;
    for (Thread t : vcpuThreads) {
      if (t.isAlive()) {
        n++;
      }
    }
    return n;
  }

  private void checkNotVcpu() {
    if (vcpuThreads.contains(Thread.currentThread())) {
      throw new IllegalStateException("a vCPU cannot change the run state of its own machine");
    }
  }

  // ---------------------------------------------------------------- service steps

  /** Threads of the embedder inside a guest step now ({@link #enterServiceStep}); guarded by {@link #lock}. */
  private int serviceSteps;

  /**
   * Lets a thread that is no vCPU (an embedder's service thread) run a guest step: waits while the
   * machine is stopped (a pause, a save, a migration's switch-over), then counts the caller as in a
   * step until {@link #exitServiceStep()}; a stop waits for every such step to end, as it waits for
   * the vCPUs, so a stopped machine is consistent whatever its service threads do.
   *
   * @return false when {@code timeoutNs} passed with the machine still stopped
   * @throws IllegalStateException when the machine is closed (or closes meanwhile)
   * @throws InterruptedException when interrupted while waiting
   */
  public boolean enterServiceStep(long timeoutNs) throws InterruptedException {
    checkNotVcpu();
    long deadlineNs = System.nanoTime() + timeoutNs;
    lock.lockInterruptibly();
    try {
      while (pauseRequested && !shutdown) {
        long leftNs = deadlineNs - System.nanoTime();
        if (leftNs <= 0) {
          return false;
        }
        parkedChanged.awaitNanos(leftNs);
      }
      if (shutdown) {
        throw new IllegalStateException("machine is closed");
      }
      serviceSteps++;
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** Ends the step begun by {@link #enterServiceStep}; a stop that waited for it goes on. */
  public void exitServiceStep() {
    lock.lock();
    try {
      if (serviceSteps <= 0) {
        throw new IllegalStateException("exitServiceStep without enterServiceStep");
      }
      serviceSteps--;
      parkedChanged.signalAll();
    } finally {
      lock.unlock();
    }
  }

  // ---------------------------------------------------------------- vCPU

  private void runVcpu(CpuDevice cpu) {
    try (GuestMemory memory = ram.openMemory()) {
      GuestContext ctx = new GuestContext(memory, cpu, serial, timer, this::programOptions, drives);
      CpuThrottle throttle = new CpuThrottle(System::nanoTime,
          CpuThrottle.parking(System::nanoTime, () -> pauseRequested || shutdown || cpuThrottlePercent == 0));
      while (true) {
        if (pauseRequested) {
          if (!parkUntilResumed(cpu.index())) {
            return;
          }
          throttle.restart();
        }
        memory.enterStep();
        try {
          program.step(ctx);
        } finally {
          memory.exitStep();
        }
        cpu.setSteps(cpu.steps() + 1);
        serial.flush();
        throttle.afterStep(cpuThrottlePercent);
      }
    } catch (java.util.concurrent.CancellationException e) {
      if (!closing) {
        failVcpu(cpu, e);
      }
    } catch (Throwable t) {
      failVcpu(cpu, t);
    }
  }

  private void failVcpu(CpuDevice cpu, Throwable t) {
    vcpuFailure = t;
    LOG.error("vcpu {} failed; machine stops with internal-error", cpu.index(), t);
    // the other vCPUs park at their next step boundary; listeners are not called from here
    // (a vCPU must not take the transition lock a concurrent pause() holds while waiting for it)
    pauseRequested = true;
    state = RunState.INTERNAL_ERROR;
    lock.lock();
    try {
      parkedChanged.signalAll(); // a pause waiting for this vCPU counts live threads again
    } finally {
      lock.unlock();
    }
  }

  /** Parks at a step boundary; false when the machine is shutting down. */
  private boolean parkUntilResumed(int index) {
    lock.lock();
    try {
      parkedVcpus++;
      parkedFlags[index] = true;
      parkedChanged.signalAll();
      try {
        while (pauseRequested && !shutdown) {
          parkedChanged.await();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      } finally {
        parkedVcpus--;
        parkedFlags[index] = false;
      }
      return !shutdown;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Stops the vCPUs, flushes the serial port and releases RAM and the disk. The preallocation
   * thread is stopped and joined before RAM is unmapped. A vCPU stuck in a step that does not
   * return within {@link #stopTimeout()} keeps its RAM mapped (unmapping memory a thread may still
   * touch is never safe); the rest is released.
   */
  @Override
  public void close() {
    closing = true; // the preallocation thread stops at its next chunk
    boolean vcpusGone = true;
    transitionLock.lock();
    try {
      if (ram.hasPageFaultHandler()) {
        // postcopy: a vCPU may wait for a page that never comes (postcopy-paused); the fault
        // handler gives up on an interrupt, and the vCPU ends quietly since the machine closes
        vcpuThreads.forEach(Thread::interrupt);
      }
      long timeoutNs = stopTimeout.toNanos();
      long deadlineNs = System.nanoTime() + timeoutNs;
      if (state.isRunning()) {
        try {
          parkAllVcpus(deadlineNs, timeoutNs);
        } catch (TimeoutException e) {
          LOG.warn("closing the machine: {}", e.getMessage());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        timer.pause();
      }
      lock.lock();
      try {
        pauseRequested = true;
        shutdown = true;
        parkedChanged.signalAll();
      } finally {
        lock.unlock();
      }
      for (Thread t : vcpuThreads) {
        vcpusGone &= joinUntil(t, deadlineNs);
      }
      try {
        serial.flush();
      } catch (UncheckedIOException e) {
        LOG.warn("serial flush at close failed", e);
      }
      RunState from = state;
      changeState(from, RunState.SHUTDOWN);
    } finally {
      transitionLock.unlock();
    }
    Thread prealloc = preallocThread;
    boolean preallocGone = prealloc == null || joinUntil(prealloc, Long.MAX_VALUE);
    try {
      if (disk != null) {
        disk.close();
      }
    } catch (IOException e) {
      LOG.warn("closing disk failed", e);
    } finally {
      for (dev.ferry.block.DiskImage d : drives) {
        try {
          d.close();
        } catch (IOException e) {
          LOG.warn("closing drive '{}' failed", d.name(), e);
        }
      }
      if (vcpusGone && preallocGone) {
        ram.close();
      } else {
        LOG.warn("closing the machine: a vCPU or the preallocation thread still runs; guest RAM stays mapped");
      }
    }
  }

  /** Joins {@code t} until {@code deadlineNs} (MAX_VALUE: no deadline); false if it still runs. */
  private static boolean joinUntil(Thread t, long deadlineNs) {
    try {
      if (deadlineNs == Long.MAX_VALUE) {
        t.join();
      } else {
        long leftMs = TimeUnit.NANOSECONDS.toMillis(deadlineNs - System.nanoTime());
        if (leftMs > 0) {
          t.join(leftMs);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return !t.isAlive();
  }

  /** True while the preallocation thread runs (for tests of {@link #close()}). */
  boolean preallocating() {
    Thread t = preallocThread;
    return t != null && t.isAlive();
  }

  @Override
  public String toString() {
    return "Machine[" + state + ", " + ram.blocks() + ", program " + program.name() + ", " + cpus.size() + " vcpu]";
  }

  // ---------------------------------------------------------------- builder

  /** Builds a {@link Machine}; without any {@link #ramBlock} call it gets one block {@code ram}. */
  public static final class Builder {
    /** RAM of the default block when neither memory nor blocks are given. */
    public static final long DEFAULT_MEMORY_BYTES = 128L << 20;

    /** Default of {@link #stopTimeout}. */
    public static final Duration DEFAULT_STOP_TIMEOUT = Duration.ofSeconds(10);

    private record BlockSpec(String name, long bytes, int pageSize) {}

    private final List<BlockSpec> specs = new ArrayList<>();
    private long memoryBytes = DEFAULT_MEMORY_BYTES;
    private GuestProgram program = GuestPrograms.IDLE;
    private ProgramOptions options = ProgramOptions.defaults();
    private int vcpus = 1;
    private OutputStream serialSink;
    private DiskDevice disk;
    private Path diskPath;
    private long diskBytes;
    private int diskSectorBytes = DiskDevice.DEFAULT_SECTOR_BYTES;
    private record DriveSpec(String name, Path path, long sizeBytes, boolean inactive) {}
    private final List<DriveSpec> driveSpecs = new ArrayList<>();
    private final List<dev.ferry.block.DiskImage> drives = new ArrayList<>();
    private CpuDevice.Layout cpuLayout;
    private MachineType machineType = MachineType.newest();
    private boolean memPrealloc;
    private boolean pinProgram;
    private Duration stopTimeout = DEFAULT_STOP_TIMEOUT;
    private final List<SaveStateEntry> userEntries = new ArrayList<>();
    /** How a block is preallocated; tests put a slow one here. */
    java.util.function.BiConsumer<RamBlock, java.util.function.BooleanSupplier> preallocator = RamBlock::preallocate;

    private Builder() {}

    /**
     * How long a stop (pause, switch-over, save) waits for every vCPU to finish its current step
     * before it gives up and leaves the machine running (default {@link #DEFAULT_STOP_TIMEOUT}). A
     * step takes well under a millisecond; only a guest step that never returns reaches this.
     */
    public Builder stopTimeout(Duration timeout) {
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("stop timeout must be positive: " + timeout);
      }
      this.stopTimeout = timeout;
      return this;
    }

    /**
     * Commits all guest RAM in the background right after the build (QEMU's {@code
     * -mem-prealloc}): a destination then takes incoming pages without a page fault each, which on
     * a virtual machine costs more than the copy. Costs the full RAM size in resident memory.
     */
    public Builder memPrealloc(boolean on) {
      this.memPrealloc = on;
      return this;
    }

    /**
     * The machine type (default: {@link MachineType#newest()}): the versions of the state its
     * devices save and the sections it registers.
     */
    public Builder machineType(MachineType type) {
      this.machineType = Objects.requireNonNull(type, "type");
      return this;
    }

    /**
     * Overrides the cpu state layout the {@linkplain #machineType machine type} pins (as QEMU's
     * {@code -global}); without it, {@code -Dferry.cpu.layout} when set, else the type's.
     */
    public Builder cpuLayout(CpuDevice.Layout layout) {
      this.cpuLayout = Objects.requireNonNull(layout, "layout");
      return this;
    }

    /** Size of the default block {@code ram} (ignored once {@link #ramBlock} is used). */
    public Builder memory(long bytes) {
      this.memoryBytes = bytes;
      return this;
    }

    /** Adds a block with 4 KiB pages. */
    public Builder ramBlock(String name, long bytes) {
      return ramBlock(name, bytes, 4096);
    }

    /** Adds a block with its own page size (4 KiB, or 2 MiB for a huge-page block). */
    public Builder ramBlock(String name, long bytes, int pageSize) {
      specs.add(new BlockSpec(Objects.requireNonNull(name, "name"), bytes, pageSize));
      return this;
    }

    public Builder program(GuestProgram program) {
      this.program = Objects.requireNonNull(program, "program");
      return this;
    }

    /** A built-in program by name ({@link GuestPrograms#names()}). */
    public Builder program(String name) {
      return program(GuestPrograms.byName(name));
    }

    /**
     * With {@code true}, a loaded state (snapshot or incoming migration) must name this machine's
     * program, or the load fails naming both (what {@code ferry run --program NAME} asks for).
     * Without, the machine runs whatever program the loaded state names.
     */
    public Builder pinProgram(boolean pin) {
      this.pinProgram = pin;
      return this;
    }

    public Builder programOptions(ProgramOptions options) {
      this.options = Objects.requireNonNull(options, "options");
      return this;
    }

    public Builder vcpus(int n) {
      if (n < 1 || n > 64) {
        throw new IllegalArgumentException("vcpus must be 1..64: " + n);
      }
      this.vcpus = n;
      return this;
    }

    /** Where the serial port writes (default: discarded). */
    public Builder serial(OutputStream sink) {
      this.serialSink = sink;
      return this;
    }

    /** Serial output appended to a file. */
    public Builder serial(Path file) {
      try {
        this.serialSink =
            Files.newOutputStream(
                file, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot open serial output " + file, e);
      }
      return this;
    }

    /** A disk image at {@code path} of {@code sizeBytes} (created sparse when missing). */
    public Builder disk(Path path, long sizeBytes) {
      this.diskPath = Objects.requireNonNull(path, "path");
      this.diskBytes = sizeBytes;
      return this;
    }

    /**
     * Attaches the raw image {@code path} as drive {@code name} ({@code ferry run --drive
     * file=PATH,id=NAME,size=SIZE}; repeatable, names unique). A missing file is created sparse with
     * {@code sizeBytes}; an existing one must have that size ({@code sizeBytes <= 0}: its own size).
     */
    public Builder drive(String name, Path path, long sizeBytes) {
      return drive(name, path, sizeBytes, false);
    }

    /**
     * {@link #drive(String, Path, long)}, opened inactive when {@code inactive}: a destination of an
     * incoming migration owns the image only once its load completed (shared storage: the source
     * writes it until then).
     */
    public Builder drive(String name, Path path, long sizeBytes, boolean inactive) {
      for (DriveSpec d : driveSpecs) {
        if (d.name().equals(name)) {
          throw new IllegalArgumentException("Duplicate ID '" + name + "' for drive");
        }
      }
      driveSpecs.add(new DriveSpec(Objects.requireNonNull(name, "name"), Objects.requireNonNull(path, "path"), sizeBytes, inactive));
      return this;
    }

    /**
     * Adds a device of the embedder's: its state is saved, loaded and migrated after the built-in
     * devices, under its own idstr and instance id (which must not clash with another device's).
     */
    public Builder device(SaveStateEntry entry) {
      Objects.requireNonNull(entry, "entry");
      for (SaveStateEntry e : userEntries) {
        if (e.idstr().equals(entry.idstr()) && e.instanceId() == entry.instanceId()) {
          throw new IllegalArgumentException("device '" + entry.idstr() + "' instance " + entry.instanceId() + " added twice");
        }
      }
      userEntries.add(entry);
      return this;
    }

    public Builder diskSectorBytes(int sectorBytes) {
      this.diskSectorBytes = sectorBytes;
      return this;
    }

    private List<RamBlock> blocks() {
      List<BlockSpec> list = specs.isEmpty() ? List.of(new BlockSpec("ram", memoryBytes, 4096)) : specs;
      if (list.stream().map(BlockSpec::name).distinct().count() != list.size()) {
        throw new IllegalArgumentException("RAM block names must be unique: " + list.stream().map(BlockSpec::name).toList());
      }
      List<RamBlock> out = new ArrayList<>();
      try {
        for (BlockSpec s : list) {
          out.add(RamBlock.allocate(s.name, s.bytes, s.pageSize));
        }
      } catch (RuntimeException | Error e) {
        out.forEach(RamBlock::close);
        throw e;
      }
      return out;
    }

    public Machine build() {
      if (diskPath != null) {
        try {
          disk = new DiskDevice(diskPath, diskBytes, diskSectorBytes);
        } catch (IOException e) {
          throw new UncheckedIOException("cannot open disk image " + diskPath, e);
        }
      }
      try {
        for (DriveSpec d : driveSpecs) {
          dev.ferry.block.DiskImage img = dev.ferry.block.DiskImage.open(d.name(), d.path(), d.sizeBytes());
          drives.add(img);
          if (d.inactive()) {
            img.inactivate();
          }
        }
      } catch (IOException | RuntimeException e) {
        for (dev.ferry.block.DiskImage img : drives) {
          try {
            img.close();
          } catch (IOException ignored) {
            // the open failure is the one to report
          }
        }
        drives.clear();
        if (e instanceof IOException io) {
          throw new UncheckedIOException("cannot open drive image: " + io.getMessage(), io);
        }
        throw (RuntimeException) e;
      }
      return new Machine(this);
    }
  }
}
