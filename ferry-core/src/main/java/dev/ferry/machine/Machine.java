package dev.ferry.machine;

import dev.ferry.ram.DirtyLog;
import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.GuestRam;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.SaveStateEntry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
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
  private final List<CpuDevice> cpus;
  private final SerialDevice serial;
  private final TimerDevice timer;
  private final DiskDevice disk;
  private final List<Device> devices;
  private final GuestProgram program;
  private final ProgramOptions options;
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
  private volatile RunState state = RunState.PRELAUNCH;
  private volatile Throwable vcpuFailure;

  /** Commits RAM in the background when built with {@code memPrealloc}; null otherwise. */
  private volatile Thread preallocThread;

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
    List<CpuDevice> cpuList = new ArrayList<>();
    for (int i = 0; i < b.vcpus; i++) {
      cpuList.add(new CpuDevice(i, program.name(), b.cpuLayout != null ? b.cpuLayout : CpuDevice.Layout.configured()));
    }
    this.cpus = List.copyOf(cpuList);
    this.serial = new SerialDevice(b.serialSink != null ? b.serialSink : OutputStream.nullOutputStream());
    this.timer = new TimerDevice();
    this.disk = b.disk;
    List<Device> all = new ArrayList<>(cpus);
    all.add(serial);
    all.add(timer);
    if (disk != null) {
      all.add(disk);
    }
    this.devices = List.copyOf(all);
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
                  ram.blocks().forEach(RamBlock::preallocate);
                } catch (RuntimeException e) {
                  // the machine was closed meanwhile: nothing left to commit
                }
              });
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  // ---------------------------------------------------------------- parts

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
    return devices.stream().map(Device::stateEntry).toList();
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

  public GuestProgram program() {
    return program;
  }

  public ProgramOptions programOptions() {
    return options;
  }

  // ---------------------------------------------------------------- run state

  public RunState runState() {
    return state;
  }

  public boolean isRunning() {
    return state.isRunning();
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

  /** Same as {@code stop(RunState.PAUSED)}. */
  public void pause() {
    stop(RunState.PAUSED);
  }

  /**
   * Stops the vCPUs at a step boundary (waiting for each to finish its current step) and the
   * virtual clock, then enters {@code to}. On an already stopped machine only the state changes
   * (e.g. {@code paused -> postmigrate}).
   */
  public void stop(RunState to) {
    Objects.requireNonNull(to, "to");
    if (to.isRunning()) {
      throw new IllegalArgumentException("stop into " + to + "; use resume()");
    }
    checkNotVcpu();
    transitionLock.lock();
    try {
      RunState from = state;
      if (from.isRunning()) {
        parkAllVcpus();
        timer.pause();
        serial.flush();
      }
      changeState(from, to);
    } finally {
      transitionLock.unlock();
    }
  }

  /** Runs the vCPUs from where they stopped (no-op when running). */
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

  private void parkAllVcpus() {
    lock.lock();
    try {
      pauseRequested = true;
      vcpuThreads.forEach(LockSupport::unpark); // cut idle halts short
      boolean interrupted = false;
      while (parkedVcpus < liveVcpuCount()) {
        try {
          parkedChanged.await(100, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          interrupted = true; // a pause must complete; re-assert afterwards
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    } finally {
      lock.unlock();
    }
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

  // ---------------------------------------------------------------- vCPU

  private void runVcpu(CpuDevice cpu) {
    try (GuestMemory memory = ram.openMemory()) {
      GuestContext ctx = new GuestContext(memory, cpu, serial, timer, options);
      while (true) {
        if (pauseRequested && !parkUntilResumed()) {
          return;
        }
        memory.enterStep();
        try {
          program.step(ctx);
        } finally {
          memory.exitStep();
        }
        cpu.setSteps(cpu.steps() + 1);
        serial.flush();
      }
    } catch (Throwable t) {
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
  }

  /** Parks at a step boundary; false when the machine is shutting down. */
  private boolean parkUntilResumed() {
    lock.lock();
    try {
      parkedVcpus++;
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
      }
      return !shutdown;
    } finally {
      lock.unlock();
    }
  }

  /** Stops the vCPUs, flushes the serial port and releases RAM and the disk. */
  @Override
  public void close() {
    transitionLock.lock();
    try {
      if (state.isRunning()) {
        parkAllVcpus();
        timer.pause();
      }
      lock.lock();
      try {
        shutdown = true;
        parkedChanged.signalAll();
      } finally {
        lock.unlock();
      }
      for (Thread t : vcpuThreads) {
        try {
          t.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
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
    try {
      if (disk != null) {
        disk.close();
      }
    } catch (IOException e) {
      LOG.warn("closing disk failed", e);
    } finally {
      ram.close();
    }
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
    private CpuDevice.Layout cpuLayout;
    private boolean memPrealloc;

    private Builder() {}

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
     * The cpu state layout this machine saves and loads (default: {@link
     * CpuDevice.Layout#configured()}, i.e. {@code -Dferry.cpu.layout}, else v2).
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
      return new Machine(this);
    }
  }
}
