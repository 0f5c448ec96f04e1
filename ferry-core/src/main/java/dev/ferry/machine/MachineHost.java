package dev.ferry.machine;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationManager;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.MigrationVm;
import dev.ferry.ram.RamLiveState;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamSaveOptions;
import dev.ferry.savevm.CommandListener;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateLoader;
import dev.ferry.savevm.StateSaver;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * A machine with everything that saves, loads and migrates it (QEMU's vl.c wiring): the registry
 * of its state (RAM as the live {@code ram} section, every device, {@code globalstate}), the
 * {@link MigrationManager}, and whole-machine save and load.
 */
public final class MachineHost implements AutoCloseable {
  /** Sections that streams of earlier Ferry versions lack (the RAM layout came later). */
  private static final java.util.Set<String> OPTIONAL_SECTIONS =
      java.util.Set.of("ferry-ram-layout", dev.ferry.block.BlockDescriptor.IDSTR);

  /**
   * The default machine type's name ({@link MachineType#newest()}). A machine's own type is {@link
   * Machine#machineType()}; a destination accepts exactly that.
   */
  public static final String MACHINE_TYPE = MachineType.newest().name();

  private final Machine machine;
  private final SaveStateRegistry registry = new SaveStateRegistry();
  private final RamLiveState ram;
  /** The disks as the {@code block} live section (in the stream only when block migration is on). */
  private final dev.ferry.block.BlockLiveState block;
  private volatile boolean nextBlk;
  private volatile boolean nextInc;
  private final GlobalState globalState = new GlobalState();
  private final MigrationManager migration;
  private final Configuration config;

  public MachineHost(Machine machine) {
    this.machine = machine;
    this.config = Configuration.of(machine.machineType().name());
    this.ram = new RamLiveState(machine.ram());
    this.block = new dev.ferry.block.BlockLiveState(machine.drives());
    registry.register(block); // before ram, as QEMU registers it: its sections come first
    registry.register(ram);
    RamLayout layout = new RamLayout(machine.ramBlocks());
    registry.register(machine.machineType().ramLayoutSection() ? layout.entry() : layout.loadOnlyEntry());
    for (SaveStateEntry e : machine.stateEntries()) {
      registry.register(e);
    }
    registry.register(new SavedRunState(globalState.entry()));
    this.ramMayHoldData =
        machine.runState() != RunState.PRELAUNCH || machine.cpus().stream().anyMatch(c -> c.steps() > 0);
    machine.addRunStateListener(
        (from, to) -> {
          if (to == RunState.RUNNING) {
            ramMayHoldData = true;
          }
        });
    this.migration = new MigrationManager(registry, new Vm(), config);
    // an incoming load counts as complete (SHUT(0), "completed") only once every section arrived
    migration.setLoadCheck(this::checkComplete);
    migration.beforeIncoming(
        in -> {
          in.setKnownMachineTypes(MachineType.names());
          wirePostcopy(in);
        });
    // runs inside MigrationManager.migrate, under its lock (see save)
    migration.beforeStart(
        o -> {
          if (snapshotSaving) {
            throw new IllegalStateException(SNAPSHOT_SAVE_IN_PROGRESS);
          }
          boolean blk = nextBlk;
          boolean inc = nextInc;
          nextBlk = false;
          nextInc = false;
          if ((blk || inc)
              && (migration.capability(MigrationCapability.BLOCK) || migration.parameters().blockIncremental())) {
            throw new IllegalArgumentException("Command options are incompatible with current migration capabilities");
          }
          // block migration of this migration: migrate blk/inc or the capability (its save options)
          dev.ferry.block.BlockSaveOptions blockOptions =
              new dev.ferry.block.BlockSaveOptions(
                  blk || inc || migration.capability(MigrationCapability.BLOCK),
                  inc || migration.parameters().blockIncremental(),
                  migration.capability(MigrationCapability.ZERO_BLOCKS));
          o.saveOptions(
              SaveOptions.of(
                  blockOptions,
                  new RamSaveOptions(
                      o.stats(),
                      migration.capability(MigrationCapability.XBZRLE),
                      migration.parameters().xbzrleCacheSizeBytes(),
                      migration.capability(MigrationCapability.POSTCOPY_RAM),
                      migration.capability(MigrationCapability.MAPPED_RAM))));
        });
  }

  /**
   * The {@code blk} / {@code inc} arguments of the next {@code migrate} (QEMU's migrate_prepare):
   * block migration (incremental with {@code inc}) for that migration only, without changing the
   * capability or parameter. Refused with the {@code block} capability or {@code block-incremental}
   * on, as QEMU refuses it.
   */
  public void nextMigrationBlock(boolean blk, boolean inc) {
    this.nextBlk = blk;
    this.nextInc = inc;
  }

  /** The disks' live state (block migration statistics, the drives). */
  public dev.ferry.block.BlockLiveState block() {
    return block;
  }

  /**
   * Checks the records of the {@code disk} program on every drive (QMP {@code ferry-disk-check}),
   * from where cpu 0 stands; a running machine is paused for it and runs on after.
   */
  public synchronized dev.ferry.block.DiskCheck.Result diskCheck() throws IOException {
    if (machine.drives().isEmpty()) {
      throw new IllegalStateException("the machine has no drive");
    }
    if (!machine.cpus().getFirst().programName().equals("disk")) {
      throw new IllegalStateException("the guest does not run the disk program (it runs '"
          + machine.cpus().getFirst().programName() + "')");
    }
    RunState before = machine.runState();
    MigrationStatus incoming = migration.incomingState().status();
    if (loading
        || incoming.isActive()
        || (before == RunState.INMIGRATE && incoming != MigrationStatus.COMPLETED)) {
      throw new IllegalStateException("Guest is waiting for an incoming migration");
    }
    boolean wasRunning = before.isRunning();
    if (wasRunning) {
      machine.stop(RunState.PAUSED);
    }
    try {
      CpuDevice c = machine.cpus().getFirst();
      if (c.pc() == 0) {
        return dev.ferry.block.DiskCheck.check(machine.drives(), 0, 0, 0);
      }
      return dev.ferry.block.DiskCheck.check(machine.drives(), c.reg(2), (int) c.reg(0), c.reg(1));
    } finally {
      if (wasRunning) {
        machine.resume();
      }
    }
  }

  /**
   * Why a migration is refused during a snapshot save. QEMU never sees both, as savevm holds the
   * big lock for its whole run (Ferry's QMP backend does the same with its lock); through the Java
   * API the two are kept apart here.
   */
  static final String SNAPSHOT_SAVE_IN_PROGRESS = "There's a snapshot save in progress";

  /** True while {@link #save} runs; set and tested under the migration manager's lock. */
  private volatile boolean snapshotSaving;

  public Machine machine() {
    return machine;
  }

  public MigrationManager migration() {
    return migration;
  }

  public SaveStateRegistry registry() {
    return registry;
  }

  public Configuration configuration() {
    return config;
  }

  /**
   * The static descriptions of everything this machine saves that has a VMState description (RAM
   * has none), one section per idstr in registration order, under its machine type's name: what
   * QEMU's {@code -dump-vmstate} prints, for {@code ferry vmstate dump} and {@link
   * dev.ferry.vmstate.VMStateCompat}.
   */
  public dev.ferry.vmstate.VMStateDump vmstateDump() {
    java.util.Map<String, dev.ferry.vmstate.VMStateDescription<?>> devices = new java.util.LinkedHashMap<>();
    for (SaveStateRegistry.Registration r : registry.all()) {
      if (r instanceof SaveStateRegistry.Device d && d.entry().vmstateDescription() != null) {
        devices.putIfAbsent(d.idstr(), d.entry().vmstateDescription());
      }
    }
    return dev.ferry.vmstate.VMStateDump.of(config.machineType(), devices);
  }

  /** globalstate records the run state at save time (the machine is stopped by then). */
  private final class SavedRunState extends dev.ferry.savevm.ForwardingSaveStateEntry {
    SavedRunState(SaveStateEntry inner) {
      super(inner);
    }

    @Override
    public void save(MigrationOutput out, dev.ferry.stream.QemuJsonWriter desc) throws IOException {
      // stopped by the migration or the save: the state before that; already stopped: as it is
      RunState now = machine.runState();
      globalState.set(now == RunState.FINISH_MIGRATE || now == RunState.SAVE_VM ? runStateToSave : now);
      super.save(out, desc);
    }
  }

  /** The run state written into the next save: the state before the save stopped the machine. */
  private volatile RunState runStateToSave = RunState.RUNNING;
  /** The run state the last load found, or null. */
  private volatile RunState loadedRunState;

  private final class Vm implements MigrationVm {
    @Override
    public boolean running() {
      return machine.isRunning();
    }

    /**
     * Bounded by the machine's stop timeout and interruptible (a cancel interrupts the migration
     * thread): a vCPU that does not finish its step in time fails the switch-over, and the source
     * runs on as before.
     */
    @Override
    public void pause() throws InterruptedException {
      RunState before = machine.runState();
      try {
        machine.stop(RunState.FINISH_MIGRATE, machine.stopTimeout().toNanos(), TimeUnit.NANOSECONDS);
      } catch (TimeoutException e) {
        throw new IllegalStateException("switch-over: " + e.getMessage() + "; the source keeps running", e);
      }
      runStateToSave = before;
      // hand the disks over (QEMU's bdrv_inactivate_all): flushed, and nothing here writes them now
      for (dev.ferry.block.DiskImage d : machine.drives()) {
        try {
          d.inactivate();
        } catch (IOException e) {
          throw new IllegalStateException("switch-over: flushing drive '" + d.name() + "' failed: " + e.getMessage(), e);
        }
      }
    }

    @Override
    public void throttle(int percent) {
      machine.setCpuThrottle(percent);
    }

    @Override
    public void resume() {
      for (dev.ferry.block.DiskImage d : machine.drives()) {
        try {
          d.activate(); // the migration failed or was cancelled: the disks are ours again
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e.getMessage(), e);
        }
      }
      if (runStateToSave.isRunning()) {
        machine.resume();
      } else {
        machine.stop(runStateToSave);
      }
    }

    @Override
    public void migrated() {
      machine.stop(RunState.POSTMIGRATE);
    }
  }

  /**
   * Saves the whole machine to {@code file} (atomically: a temp file renamed into place). A running
   * machine is paused for the save and runs on afterwards.
   */
  public void save(Path file) throws IOException {
    // as QEMU's savevm: refused while a migration is active (QERR_MIGRATION_ACTIVE). The test and
    // the mark are atomic with MigrationManager.migrate (synchronized on the manager), whose
    // beforeStart hook refuses a migration while the mark is set.
    synchronized (migration) {
      if (migration.outgoingState().status().isActive()) {
        throw new IllegalStateException("There's a migration process in progress");
      }
      if (snapshotSaving) {
        throw new IllegalStateException(SNAPSHOT_SAVE_IN_PROGRESS);
      }
      snapshotSaving = true;
    }
    try {
      saveStopped(file);
    } finally {
      snapshotSaving = false;
    }
  }

  private void saveStopped(Path file) throws IOException {
    if (migration.capability(MigrationCapability.BLOCK)) {
      throw new IllegalStateException("Block migration and snapshots are incompatible");
    }
    RunState before = machine.runState();
    runStateToSave = before;
    machine.stop(RunState.SAVE_VM);
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try {
      try (FileChannel ch =
              FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
          MigrationOutput out = new MigrationOutput(ch)) {
        StateSaver.saveSnapshot(registry, out, config);
      }
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
      if (before.isRunning()) {
        machine.resume();
      } else {
        machine.stop(before);
      }
    }
  }

  /**
   * An exact digest of this machine's RAM and device state (see {@link MemoryDigest}), with page
   * digests kept. A running machine is paused for the digest and runs on afterwards (as the stress
   * check does); a stopped one stays as it is, e.g. a destination whose incoming load completed and
   * that has not run yet. Refused while a migration or a load is in progress (RAM and devices are
   * being written or saved then) and in {@code inmigrate} before a load completed.
   *
   * @throws IllegalStateException during a migration or load, or on a closed machine
   */
  public synchronized MemoryDigest memoryDigest() {
    RunState before = machine.runState();
    if (migration.outgoingState().status().isActive()) {
      throw new IllegalStateException("There's a migration process in progress");
    }
    MigrationStatus incoming = migration.incomingState().status();
    // inmigrate is fine once the load completed: the destination before it first runs
    if (loading
        || incoming.isActive()
        || (before == RunState.INMIGRATE && incoming != MigrationStatus.COMPLETED)) {
      throw new IllegalStateException("Guest is waiting for an incoming migration");
    }
    if (before == RunState.SAVE_VM) {
      throw new IllegalStateException("a snapshot save is in progress");
    }
    if (before == RunState.SHUTDOWN) {
      throw new IllegalStateException("machine is closed");
    }
    boolean wasRunning = before.isRunning();
    if (wasRunning) {
      machine.stop(RunState.PAUSED);
    }
    try {
      return MemoryDigest.compute(
          machine.ramBlocks(), registry.devices().stream().map(SaveStateRegistry.Device::entry).toList(), machine.drives());
    } finally {
      if (wasRunning) {
        machine.resume();
      }
    }
  }

  /**
   * Loads a whole-machine stream into this (stopped) machine. On success the machine is left
   * stopped; {@link #loadedRunState()} says whether the source was running. On failure the machine
   * may hold part of the state: it is left in {@code internal-error}, which refuses to run until a
   * whole state is loaded.
   */
  public StateLoader load(MigrationInput in) throws IOException {
    if (machine.isRunning()) {
      throw new IllegalStateException("the machine must be stopped to load state into it");
    }
    machine.stop(RunState.RESTORE_VM);
    loading = true;
    try {
      SaveOptions options = loadOptions(false);
      ramMayHoldData = true;
      StateLoader loader =
          StateLoader.load(registry, in, StreamReader.Options.DEFAULT, config, MachineType.names(), options, CommandListener.NONE);
      checkComplete(loader);
      return loader;
    } catch (IOException | RuntimeException e) {
      loadFailed();
      throw e;
    } finally {
      loading = false;
    }
  }

  /**
   * A load that failed may have left part of a state in RAM and devices: the machine goes to
   * {@code internal-error}, which {@code cont} and {@link Machine#resume()} refuse ("Resetting the
   * Virtual Machine is required") until a whole state is loaded.
   */
  private void loadFailed() {
    try {
      machine.stop(RunState.INTERNAL_ERROR);
    } catch (RuntimeException e) {
      // closed meanwhile: nothing can run it any more anyway
    }
  }

  /** A whole-machine load ({@link #load(MigrationInput)}) is writing RAM and devices. */
  private volatile boolean loading;

  /** Loads {@code file} (see {@link #load(MigrationInput)}). */
  public StateLoader load(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      return load(new MigrationInput(ch));
    }
  }

  /**
   * Waits for one incoming migration on {@code uri} and loads it; blocks. The machine stays stopped
   * (in {@code inmigrate}) until the load completed; then the caller decides to run it.
   */
  public StateLoader incoming(String uri, Consumer<String> onListening) throws IOException {
    machine.stop(RunState.INMIGRATE);
    try {
      inactivateDrives();
      SaveOptions options = loadOptions(migration.capability(MigrationCapability.MAPPED_RAM));
      ramMayHoldData = true;
      return migration.incoming(uri, StreamReader.Options.DEFAULT, options, onListening);
    } catch (IOException | RuntimeException e) {
      loadFailed();
      throw e;
    }
  }

  /**
   * What the next load tells its live handlers, made per load (the RAM's {@link RamLoadOptions}).
   * Every block list entry is checked against this machine's blocks (name, length; nothing is
   * allocated), so the total is not capped at this machine's size: a larger list then fails naming
   * the block this machine lacks. {@code mappedRam}: an incoming migration that may read a mapped-ram
   * file.
   */
  private SaveOptions loadOptions(boolean mappedRam) {
    return SaveOptions.of(RamLoadOptions.defaults().withBlocksStartZeroed(!ramMayHoldData).withMappedRam(mappedRam));
  }

  /**
   * False while guest RAM is known to be all zeros: the machine never ran and nothing was loaded
   * into it. A load into such RAM skips zero pages without reading them.
   */
  private volatile boolean ramMayHoldData;

  /**
   * Loads one incoming migration from the open channel {@code c} (see {@link #incoming(String,
   * Consumer)}); blocks. The caller closes the channel.
   */
  public StateLoader incoming(MigrationChannel c) throws IOException {
    machine.stop(RunState.INMIGRATE);
    try {
      inactivateDrives();
      SaveOptions options = loadOptions(migration.capability(MigrationCapability.MAPPED_RAM));
      ramMayHoldData = true;
      return migration.incoming(c, StreamReader.Options.DEFAULT, options);
    } catch (IOException | RuntimeException e) {
      loadFailed();
      throw e;
    }
  }

  /** A destination does not own its disks until its load completed (shared storage). */
  private void inactivateDrives() throws IOException {
    for (dev.ferry.block.DiskImage d : machine.drives()) {
      d.inactivate();
    }
  }

  /** A stream that lacked a section this machine needs is a partial load: refuse it. */
  private void checkComplete(StateLoader loader) throws IOException {
    for (SaveStateRegistry.Registration r : registry.all()) {
      if (!loader.wasLoaded(r.idstr(), r.instanceId()) && !OPTIONAL_SECTIONS.contains(r.idstr())) {
        throw new MigrationStreamException(
            "incomplete state: the stream has no section '" + r.idstr() + "' instance " + r.instanceId()
                + " (a different machine or device set?)");
      }
    }
    machine.adoptLoadedProgram();
    for (dev.ferry.block.DiskImage d : machine.drives()) {
      d.activate(); // the source handed them over at its switch-over; a resized image is refused
    }
    loadedRunState = loadedGlobalState();
  }

  private RunState loadedGlobalState() {
    return globalState.get();
  }

  /** The run state the source had, from the last successful load; null before any. */
  public RunState loadedRunState() {
    return loadedRunState;
  }

  /** Whether a postcopy destination runs the guest at POSTCOPY_RUN (QEMU's autostart); default true. */
  public void setPostcopyAutostart(java.util.function.BooleanSupplier autostart) {
    this.postcopyAutostart = autostart;
  }

  private volatile java.util.function.BooleanSupplier postcopyAutostart = () -> true;
  /** The current load switched to postcopy: the machine's run state was decided at POSTCOPY_RUN. */
  private volatile boolean startedByPostcopy;

  /** With postcopy-ram on here, an incoming migration may switch to postcopy (demand paging). */
  private void wirePostcopy(dev.ferry.migration.IncomingMigration in) {
    startedByPostcopy = false;
    if (!migration.capability(MigrationCapability.POSTCOPY_RAM)) {
      return;
    }
    dev.ferry.migration.PostcopyIncoming pc =
        new dev.ferry.migration.PostcopyIncoming(machine.ram(), () -> ramLoader(in), machine::vcpuIndexOf, machine.cpus().size());
    in.setPostcopy(
        pc,
        loader -> {
          checkComplete(loader);
          startedByPostcopy = true;
          RunState s = loadedRunState;
          if (postcopyAutostart.getAsBoolean() && s != null && s.isRunning()) {
            machine.resume();
          } else {
            machine.stop(RunState.PAUSED);
          }
        });
  }

  /** The RAM loader of {@code in}'s load, once it began, or null. */
  private static dev.ferry.ram.RamLoader ramLoader(dev.ferry.migration.IncomingMigration in) {
    StateLoader loader = in.stateLoader();
    RamLiveState.Load load = loader == null ? null : loader.liveLoad(RamLiveState.IDSTR, RamLiveState.Load.class);
    return load == null ? null : load.loader();
  }

  /**
   * After a load: runs the machine if the source was running (and {@code paused} is false). After a
   * postcopy load it does nothing: the run state was decided at POSTCOPY_RUN and may have changed
   * since (a {@code stop} during postcopy stays).
   */
  public void startAfterLoad(boolean paused) {
    if (startedByPostcopy) {
      return;
    }
    RunState s = loadedRunState;
    if (!paused && s != null && s.isRunning()) {
      machine.resume();
    } else {
      machine.stop(RunState.PAUSED);
    }
  }

  /** stop, cont, loadvm, autostart: one set of rules per machine, whoever drives it. */
  private RunStateRules rules;

  /** The run-state rules of this machine, shared by the monitor and the Java API. */
  public synchronized RunStateRules runStateRules() {
    if (rules == null) {
      rules = new RunStateRules(this);
    }
    return rules;
  }

  @Override
  public void close() {
    machine.close();
  }
}
