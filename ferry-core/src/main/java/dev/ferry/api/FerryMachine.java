package dev.ferry.api;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.RunStateRules;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.migration.IncomingMigration;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationManager;
import dev.ferry.migration.MigrationParameters;
import dev.ferry.ram.RamBlock;
import dev.ferry.savevm.LegacySaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import dev.ferry.transport.Authz;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.TlsObjects;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A machine built from named RAM regions and the embedder's devices, run by its service threads
 * ({@link GuestThread}) and vCPUs running the embedder's {@link VcpuProgram} (or a built-in
 * program), that can be saved, loaded,
 * snapshotted and migrated live to another process speaking QEMU 7.2's stream.
 *
 * <p>A built machine is {@link RunState#PRELAUNCH prelaunch}: nothing runs until {@link #start()}
 * (or an incoming migration, which runs it if its source ran). The run-state rules are QEMU's (see
 * {@link #start()}, {@link #pause()}, {@link #load(Path)}); errors that a monitor would print are
 * {@link IllegalStateException}s with that one line, I/O and stream errors {@link IOException}s
 * naming the section, field and offset.
 *
 * <p>Thread-safe: commands are serialised; queries read volatile state.
 */
public final class FerryMachine implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FerryMachine.class);

  static {
    // Ferry's own modules (ferry run serving an embedder's machine) reach the engine through this;
    // nothing public exposes it
    dev.ferry.machine.EmbedderBridge.register(
        m -> {
          if (!(m instanceof FerryMachine f)) {
            throw new IllegalArgumentException("not a FerryMachine: " + m.getClass().getName());
          }
          return f.host;
        });
  }

  private final Machine machine;
  private final MachineHost host;
  private final RunStateRules rules;
  private final SnapshotStore snapshots;
  private final List<Region> regions;
  private final Object lock = new Object();
  private volatile Thread incomingThread;
  /** An incoming migration runs: set when it starts, cleared before its handle learns its end. */
  private volatile boolean incomingRunning;

  private FerryMachine(Machine machine, Path snapshotDir) {
    this.machine = machine;
    this.host = new MachineHost(machine);
    this.rules = host.runStateRules();
    this.snapshots = snapshotDir == null ? null : new SnapshotStore(snapshotDir, host);
    List<Region> r = new ArrayList<>();
    List<RamBlock> blocks = machine.ramBlocks();
    for (int i = 0; i < blocks.size(); i++) {
      r.add(new Region(blocks.get(i), i));
    }
    this.regions = List.copyOf(r);
  }

  /** A builder for a machine with no RAM region yet and one idle vCPU. */
  public static Builder builder() {
    return new Builder();
  }

  // ---------------------------------------------------------------- parts

  /** The RAM regions, in the order declared (their {@link Region#index()}). */
  public List<Region> regions() {
    return regions;
  }

  /**
   * The region named {@code name}.
   *
   * @throws IllegalArgumentException when there is none
   */
  public Region region(String name) {
    for (Region r : regions) {
      if (r.name().equals(name)) {
        return r;
      }
    }
    throw new IllegalArgumentException("no RAM region '" + name + "' (regions: " + regions.stream().map(Region::name).toList() + ")");
  }

  /**
   * A handle for the calling thread to run guest steps and reach guest RAM (see {@link
   * GuestThread}); close it when the thread is done.
   */
  public GuestThread openGuestThread() {
    return new GuestThread(machine);
  }

  // ---------------------------------------------------------------- run state

  /** The run state now. */
  public RunState runState() {
    return RunState.of(machine.runState());
  }

  /**
   * Runs the machine (QEMU's {@code cont}). In {@code inmigrate} it only asks that the machine run
   * once the incoming load completes.
   *
   * @throws IllegalStateException in a state that needs a reset ("Resetting the Virtual Machine is
   *     required": a failed load or step), during a switch-over, a save or a load, and on a source
   *     whose guest moved to the destination
   */
  public void start() {
    synchronized (lock) {
      rules.cont();
    }
  }

  /**
   * Pauses the machine (QEMU's {@code stop}): returns once every vCPU and every {@link GuestThread}
   * step has finished; {@link #start()} continues exactly there. In {@code inmigrate} or {@code
   * prelaunch} it only asks that the machine stay paused after an incoming load.
   *
   * @throws IllegalStateException when a step does not finish in time (the machine runs on)
   */
  public void pause() {
    synchronized (lock) {
      rules.stop();
    }
  }

  /** Calls {@code listener} with (from, to) after each run-state change, on the changing thread. */
  public void addRunStateListener(BiConsumer<RunState, RunState> listener) {
    Objects.requireNonNull(listener, "listener");
    machine.addRunStateListener((from, to) -> listener.accept(RunState.of(from), RunState.of(to)));
  }

  /**
   * Calls {@code listener} for every status change and RAM pass of this machine's migrations, both
   * directions, on the migration's thread; a listener that throws is logged and skipped.
   */
  public void addMigrationListener(Consumer<MigrationEvent> listener) {
    Objects.requireNonNull(listener, "listener");
    MigrationManager m = host.migration();
    m.outgoingState().addListener(listenerFor(MigrationEvent.Direction.OUTGOING, listener));
    m.incomingState().addListener(listenerFor(MigrationEvent.Direction.INCOMING, listener));
  }

  private static MigrationListener listenerFor(MigrationEvent.Direction d, Consumer<MigrationEvent> l) {
    return new MigrationListener() {
      @Override
      public void statusChanged(dev.ferry.migration.MigrationStatus from, dev.ferry.migration.MigrationStatus to, String reason) {
        l.accept(new MigrationEvent.StatusChanged(d, MigrationStatus.of(from), MigrationStatus.of(to), reason));
      }

      @Override
      public void pass(long pass) {
        l.accept(new MigrationEvent.Pass(d, pass));
      }
    };
  }

  // ---------------------------------------------------------------- save and load

  /**
   * Saves the whole machine to {@code file} (atomically), as a QEMU 7.2 stream. A running machine
   * is paused for the save and runs on afterwards.
   *
   * @throws IllegalStateException during a migration
   */
  public void save(Path file) throws IOException {
    synchronized (lock) {
      rules.refuseDuringMigration(incomingBusy());
      host.save(file);
    }
  }

  /**
   * Loads a whole machine state from {@code file} (QEMU's {@code loadvm}): the machine stops, the
   * state loads, and the machine runs on if it ran before. A load that fails half-way leaves the
   * machine in {@code internal-error}, which {@link #start()} refuses until a whole state loads.
   *
   * @throws IllegalStateException during a migration
   * @throws IOException naming what in the stream is wrong (the file is missing: nothing changed)
   */
  public void load(Path file) throws IOException {
    synchronized (lock) {
      rules.refuseDuringMigration(incomingBusy());
      rules.loadVm(() -> host.load(file));
    }
  }

  /**
   * Saves a named snapshot into the {@linkplain Builder#snapshotDirectory snapshot directory},
   * replacing one of that name (QEMU's {@code savevm}).
   */
  public SnapshotInfo saveSnapshot(String name) throws IOException {
    synchronized (lock) {
      rules.refuseDuringMigration(incomingBusy());
      return info(store().save(name));
    }
  }

  /** Loads a named snapshot (QEMU's {@code loadvm}, with the rules of {@link #load(Path)}). */
  public void loadSnapshot(String name) throws IOException {
    synchronized (lock) {
      rules.refuseDuringMigration(incomingBusy());
      SnapshotStore s = store();
      rules.loadVm(() -> s.load(name));
    }
  }

  /** Deletes a named snapshot (QEMU's {@code delvm}). */
  public void deleteSnapshot(String name) throws IOException {
    synchronized (lock) {
      store().delete(name);
    }
  }

  /** The snapshots saved, oldest id first. */
  public List<SnapshotInfo> snapshots() throws IOException {
    return store().list().stream().map(FerryMachine::info).toList();
  }

  private SnapshotStore store() {
    if (snapshots == null) {
      throw new IllegalStateException("this machine has no snapshot directory (Builder.snapshotDirectory)");
    }
    return snapshots;
  }

  private static SnapshotInfo info(SnapshotStore.Snapshot s) {
    return new SnapshotInfo(s.id(), s.name(), s.sizeBytes(), s.date(), s.vmClockNs());
  }

  /**
   * An exact digest of RAM and device state. A running machine is paused for it and runs on
   * afterwards; compare a stopped source's digest with its destination's before the latter runs.
   *
   * @throws IllegalStateException during a migration or a load
   */
  public StateDigest digest() {
    synchronized (lock) {
      if (incomingBusy()) {
        throw new IllegalStateException("Guest is waiting for an incoming migration");
      }
      return new StateDigest(host.memoryDigest());
    }
  }

  // ---------------------------------------------------------------- migration

  /**
   * Starts migrating this machine to {@code uri} ({@code tcp:HOST:PORT}, {@code unix:PATH}, {@code
   * exec:CMD}, {@code fd:NAME}, {@code file:PATH}) in the background. When it completes the
   * source stays stopped ({@code postmigrate}), as QEMU's does; when it fails or is cancelled the
   * machine runs on as before.
   *
   * @throws IllegalArgumentException for a bad URI or an option out of range (QEMU's words)
   * @throws IllegalStateException when a migration is in progress
   */
  public Migration migrate(String uri, MigrationOptions options) {
    synchronized (lock) {
      if (incomingBusy() || machine.runState() == dev.ferry.machine.RunState.INMIGRATE) {
        throw new IllegalStateException("Guest is waiting for an incoming migration");
      }
      MigrationManager m = host.migration();
      apply(m, options, TlsCredentials.Endpoint.CLIENT);
      return Migration.outgoing(m, uri);
    }
  }

  /**
   * Waits in the background for one incoming migration on {@code uri} ({@code tcp:HOST:0} picks a
   * port: see {@link Migration#listeningUri}) and loads it into this stopped machine, which is in
   * {@code inmigrate} meanwhile. When the load completes the machine runs if its source ran and
   * {@link MigrationOptions#autostart()} holds, else stays paused; when it fails the machine stays
   * stopped in {@code internal-error} (a half-loaded machine never runs).
   *
   * @throws IllegalArgumentException for a bad URI or option
   * @throws IllegalStateException when the machine runs or an incoming migration is in progress
   */
  public Migration incoming(String uri, MigrationOptions options) {
    synchronized (lock) {
      if (incomingBusy()) {
        throw new IllegalStateException("An incoming migration is already in progress");
      }
      if (machine.isRunning()) {
        throw new IllegalStateException("the machine runs: an incoming migration needs a stopped machine");
      }
      dev.ferry.transport.MigrationUri.parse(uri); // a bad URI fails here
      MigrationManager m = host.migration();
      apply(m, options, TlsCredentials.Endpoint.SERVER);
      rules.setAutostart(options.autostart());
      Migration mig = Migration.incoming(m);
      incomingRunning = true;
      try {
        incomingThread =
            Thread.ofPlatform()
                .name("incoming " + uri)
                .daemon()
                .start(
                    () -> {
                      Exception end = runIncoming(uri, mig);
                      incomingRunning = false; // before the handle wakes its waiters
                      mig.finished(end);
                    });
      } catch (RuntimeException | Error e) {
        incomingRunning = false;
        throw e;
      }
      return mig;
    }
  }

  /** The incoming load and the run state after it; the failure, or null. */
  private Exception runIncoming(String uri, Migration mig) {
    try {
      host.incoming(uri, mig::listeningOn);
    } catch (IncomingMigration.PostcopyPausedException e) {
      LOG.error("incoming postcopy migration on {} paused: {}", uri, e.getMessage());
      return e;
    } catch (Exception e) {
      LOG.info("incoming migration on {} failed: {}", uri, e.toString());
      return e;
    }
    try {
      synchronized (lock) {
        rules.afterIncoming();
      }
      return null;
    } catch (RuntimeException e) {
      return e;
    }
  }

  private boolean incomingBusy() {
    return incomingRunning && incomingThread != Thread.currentThread();
  }

  /**
   * Every capability of the API set as the options say, the parameters from the defaults plus the
   * options', and the TLS objects of the options made for {@code endpoint} (all checked and loaded
   * before anything changes).
   */
  private static void apply(MigrationManager m, MigrationOptions options, TlsCredentials.Endpoint endpoint) {
    Map<MigrationCapability, Boolean> caps = new EnumMap<>(MigrationCapability.class);
    for (MigrationOptions.Capability c : MigrationOptions.Capability.values()) {
      caps.put(MigrationCapability.fromQapiName(c.qapiName()), options.has(c));
    }
    Map<String, Object> params = new LinkedHashMap<>(MigrationParameters.DEFAULT.toMap());
    params.putAll(options.engineParameters());
    MigrationParameters.DEFAULT.apply(params);
    TlsCredentials creds = null;
    Authz authz = null;
    if (options.tls().isPresent()) {
      TlsOptions t = options.tls().get();
      try {
        creds = TlsCredentials.load(MigrationOptions.TLS_CREDS_ID, t.credentialsDirectory(), endpoint, t.verifyPeer());
      } catch (IOException e) {
        throw new IllegalArgumentException("TLS credentials in " + t.credentialsDirectory() + ": " + e.getMessage(), e);
      }
      if (!t.allowedClients().isEmpty()) {
        authz =
            new Authz.AuthzList(
                MigrationOptions.TLS_AUTHZ_ID,
                Authz.Policy.DENY,
                t.allowedClients().stream().map(dn -> new Authz.Rule(dn, Authz.Policy.ALLOW, Authz.Format.EXACT)).toList());
      }
    }
    m.setCapabilities(caps);
    TlsObjects objects = m.objects();
    for (String id : List.of(MigrationOptions.TLS_CREDS_ID, MigrationOptions.TLS_AUTHZ_ID)) {
      if (objects.ids().contains(id)) {
        objects.delete(id);
      }
    }
    if (creds != null) {
      objects.add(creds);
    }
    if (authz != null) {
      objects.add(authz);
    }
    m.setParameters(params);
  }

  /**
   * A {@link VcpuProgram} as the machine's vCPU loop runs it: each vCPU thread gets its {@link Vcpu}
   * view once (per thread life), then every step goes straight to the user's code.
   */
  private static final class UserProgram implements dev.ferry.machine.GuestProgram {
    private final VcpuProgram program;
    private final ThreadLocal<Vcpu> views = new ThreadLocal<>();

    UserProgram(VcpuProgram program) {
      this.program = program;
    }

    @Override
    public String name() {
      return program.name();
    }

    @Override
    public void step(dev.ferry.machine.GuestContext ctx) {
      Vcpu v = views.get();
      if (v == null || !v.of(ctx)) {
        v = new Vcpu(ctx);
        views.set(v);
      }
      program.step(v);
    }
  }

  /** Stops everything and releases RAM and disks. */
  @Override
  public void close() {
    host.close();
  }

  @Override
  public String toString() {
    return "FerryMachine[" + runState() + ", " + regions + "]";
  }

  // ---------------------------------------------------------------- builder

  /** Builds a {@link FerryMachine}. */
  public static final class Builder {
    private final Machine.Builder b = Machine.builder();
    private boolean hasRam;
    private Path snapshotDir;

    private Builder() {}

    /** Adds a RAM region of {@code bytes} with 4 KiB pages. */
    public Builder ram(String name, long bytes) {
      return ram(name, bytes, 4096);
    }

    /** Adds a RAM region with its own page size (4 KiB, or 2 MiB for huge pages). */
    public Builder ram(String name, long bytes, int pageSize) {
      b.ramBlock(name, bytes, pageSize);
      hasRam = true;
      return this;
    }

    /**
     * Adds a device whose state {@code description} saves and loads from {@code state} (instance
     * 0). Its fields change only inside guest steps, so that a stopped machine is consistent.
     */
    public <T> Builder device(String idstr, VMStateDescription<T> description, T state) {
      return device(idstr, 0, description, state);
    }

    /** {@link #device(String, VMStateDescription, Object)} with an instance id (several alike). */
    public <T> Builder device(String idstr, int instanceId, VMStateDescription<T> description, T state) {
      b.device(VMStateEntry.of(idstr, instanceId, description, state));
      return this;
    }

    /**
     * Adds a device saved by hand-written functions (QEMU's legacy save/load pair) at {@code
     * version}; {@code load} gets the version the stream was written with.
     */
    public Builder legacyDevice(String idstr, int instanceId, int version, LegacyState.Save save, LegacyState.Load load) {
      Objects.requireNonNull(save, "save");
      Objects.requireNonNull(load, "load");
      b.device(
          LegacySaveStateEntry.of(
              idstr,
              instanceId,
              version,
              out -> save.save(StreamAdapters.output(out)),
              (in, v) -> load.load(StreamAdapters.input(in), v)));
      return this;
    }

    /** vCPUs running the built-in program (default 1, running {@code idle}). */
    public Builder vcpus(int n) {
      b.vcpus(n);
      return this;
    }

    /**
     * The embedder's own program the vCPUs run (see {@link VcpuProgram}), in the machine's vCPU loop:
     * pause, save, migration and auto-converge's throttle treat it as they treat a built-in one.
     *
     * @throws IllegalArgumentException when its name is empty, longer than 64 ASCII characters, or a
     *     built-in program's
     */
    public Builder vcpuProgram(VcpuProgram program) {
      Objects.requireNonNull(program, "program");
      String name = program.name();
      if (name == null || name.isEmpty() || name.length() > dev.ferry.machine.CpuDevice.MAX_PROGRAM_NAME_BYTES
          || !java.nio.charset.StandardCharsets.US_ASCII.newEncoder().canEncode(name)) {
        throw new IllegalArgumentException(
            "a vCPU program's name must be 1.." + dev.ferry.machine.CpuDevice.MAX_PROGRAM_NAME_BYTES + " ASCII characters: '" + name + "'");
      }
      if (dev.ferry.machine.GuestPrograms.names().contains(name)) {
        throw new IllegalArgumentException("'" + name + "' is a built-in program's name; give the vCPU program another");
      }
      b.program(new UserProgram(program));
      return this;
    }

    /** The built-in guest program the vCPUs run: {@code idle} (default), {@code stress}, ... */
    public Builder program(String name) {
      b.program(name);
      return this;
    }

    /** A raw disk image at {@code path} of {@code sizeBytes}, created sparse when missing. */
    public Builder disk(Path path, long sizeBytes) {
      b.disk(path, sizeBytes);
      return this;
    }

    /**
     * Attaches the raw image {@code path} as drive {@code name} (repeatable): the guest's disks,
     * whose content migrates with {@link MigrationOptions.Capability#BLOCK} or stays on storage both
     * sides share. A missing file is created sparse with {@code sizeBytes}.
     */
    public Builder drive(String name, Path path, long sizeBytes) {
      b.drive(name, path, sizeBytes);
      return this;
    }

    /** Where named snapshots go ({@link FerryMachine#saveSnapshot}). */
    public Builder snapshotDirectory(Path dir) {
      this.snapshotDir = Objects.requireNonNull(dir, "dir");
      return this;
    }

    /** Where the serial port writes (default: discarded). */
    public Builder serial(OutputStream sink) {
      b.serial(sink);
      return this;
    }

    /**
     * How long a stop waits for the vCPUs' and guest threads' steps to end before it gives up and
     * the machine runs on (default 10 s).
     */
    public Builder stopTimeout(Duration timeout) {
      b.stopTimeout(timeout);
      return this;
    }

    /**
     * The machine, in {@code prelaunch}.
     *
     * @throws IllegalArgumentException when no RAM region was added, or two devices clash
     */
    public FerryMachine build() {
      if (!hasRam) {
        throw new IllegalArgumentException("a machine needs at least one RAM region (Builder.ram)");
      }
      Machine m = b.build();
      try {
        return new FerryMachine(m, snapshotDir);
      } catch (RuntimeException e) {
        m.close();
        throw e;
      }
    }
  }
}
