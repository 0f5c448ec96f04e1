package dev.ferry.qmp.engine;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.machine.RunState;
import dev.ferry.machine.RunStateRules;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.machine.StressCheck;
import dev.ferry.migration.MigrationListener;
import dev.ferry.migration.MigrationManager;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.qmp.MonitorBackend;
import dev.ferry.qmp.MonitorEvent;
import dev.ferry.qmp.MonitorEventSink;
import dev.ferry.qmp.QmpError;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import dev.ferry.qmp.qapi.StressCheckInfo;
import dev.ferry.qmp.qapi.XbzrleCacheStats;
import dev.ferry.ram.RamBlock;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The monitor over a real machine: a {@link MachineHost} (run state, migration, save/load) and a
 * {@link SnapshotStore}. It maps QMP's QAPI records to and from the engine's types, words errors
 * as QEMU does, and turns the machine's run-state changes into STOP/RESUME and the migration's
 * status changes and passes into MIGRATION (only while the {@code events} capability is on) and
 * MIGRATION_PASS — so the events also fire when a migration, a snapshot or a load stops the
 * machine, not only on {@code stop}/{@code cont}.
 *
 * <p><b>Incoming.</b> A process started to receive a migration calls {@link #startIncoming} (a
 * given URI) or {@link #deferIncoming} (QEMU's {@code -incoming defer}: the URI comes later with
 * {@code migrate-incoming}). The load runs on its own thread; when it succeeds the machine runs if
 * the source ran, unless the process was started paused or {@code stop} was given meanwhile (as
 * QEMU's autostart). When it fails, the machine stays stopped and the {@link
 * IncomingObserver#failed} callback decides (the {@code ferry run} process exits 1): a half-loaded
 * machine never runs.
 *
 * <p>Thread-safe: commands that change state are serialised; queries read volatile state.
 */
public final class EngineBackend implements MonitorBackend {
  private static final Logger LOG = LoggerFactory.getLogger(EngineBackend.class);

  /** Told about an incoming migration's progress (all callbacks default to nothing). */
  public interface IncomingObserver {
    /** Listening (or the file opened) on {@code boundUri}: a tcp port 0 is resolved here. */
    default void listening(String boundUri) {}

    /** The whole state loaded; the machine was started (or left paused). */
    default void loaded(RunState sourceRunState) {}

    /** The load failed; the machine is stopped and must not run. */
    default void failed(String uri, Exception error) {}

    /**
     * The stream broke after the postcopy switch: the guest runs here with the pages it has (those
     * it touches among the missing ones wait), the status is postcopy-paused and the load waits for
     * {@code migrate-recover} (called on every pause, a second cut during a recovery too).
     */
    default void postcopyPaused(String uri, Exception error) {}
  }

  private final MachineHost host;
  private final Machine machine;
  private final MigrationManager migration;
  private final SnapshotStore snapshots;
  private final List<MonitorEventSink> sinks = new CopyOnWriteArrayList<>();
  private final Object lock = new Object();
  private volatile Runnable onQuit = () -> {};
  private volatile IncomingObserver incomingObserver = new IncomingObserver() {};
  /** {@code -incoming defer}: migrate-incoming is allowed (once). */
  private volatile boolean incomingDeferred;
  /** An incoming migration was started (its thread runs or ran). */
  private volatile boolean incomingStarted;
  /** stop, cont, loadvm and autostart: the rules every way of driving a machine shares. */
  private final RunStateRules rules;
  private volatile Thread incomingThread;
  /** The URI the incoming migration was started on. */
  private volatile String incomingUri;
  /** Where the incoming migration listens (a tcp port 0 resolved), for query-migrate's socket-address. */
  private volatile String incomingBoundUri;

  public EngineBackend(MachineHost host, SnapshotStore snapshots) {
    this.host = Objects.requireNonNull(host, "host");
    this.machine = host.machine();
    this.migration = host.migration();
    this.snapshots = Objects.requireNonNull(snapshots, "snapshots");
    this.rules = host.runStateRules();
    machine.addRunStateListener(this::runStateChanged);
    migration.addListener(
        new MigrationListener() {
          @Override
          public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
            if (migration.capability(dev.ferry.migration.MigrationCapability.EVENTS)) {
              emit(new MonitorEvent.Migration(to));
            }
            if (to == MigrationStatus.POSTCOPY_PAUSED
                && migration.incomingState().status() == MigrationStatus.POSTCOPY_PAUSED) {
              // the load waits for migrate-recover; the guest lives here, the process stays up
              String uri = incomingUri;
              incomingObserver.postcopyPaused(uri, new IOException(reason));
            }
          }

          @Override
          public void pass(long pass) {
            emit(new MonitorEvent.MigrationPass(pass));
          }
        });
  }

  /** What {@code quit} does once its reply is out (e.g. end the process). */
  public void onQuit(Runnable action) {
    this.onQuit = Objects.requireNonNull(action, "action");
  }

  /** Who hears about incoming migrations (set before starting one). */
  public void setIncomingObserver(IncomingObserver observer) {
    this.incomingObserver = Objects.requireNonNull(observer, "observer");
  }

  public MachineHost host() {
    return host;
  }

  // ------------------------------------------------------------------ events

  @Override
  public void attach(MonitorEventSink events) {
    sinks.add(events);
  }

  private void emit(MonitorEvent e) {
    for (MonitorEventSink s : sinks) {
      try {
        s.emit(e);
      } catch (RuntimeException ex) {
        LOG.warn("event sink failed on {}", e.name(), ex);
      }
    }
  }

  private void runStateChanged(RunState from, RunState to) {
    if (to.isRunning()) {
      emit(new MonitorEvent.Resume());
    } else if (from.isRunning()) {
      emit(new MonitorEvent.Stop());
    }
  }

  // ------------------------------------------------------------------ run state

  @Override
  public StatusInfo queryStatus() {
    return StatusInfo.of(machine.runState());
  }

  @Override
  public void stop() throws QmpError {
    synchronized (lock) {
      try {
        rules.stop();
      } catch (IllegalStateException e) {
        // postcopy-paused, or a vCPU that did not finish its step in time (the machine runs on)
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  /** See {@link RunStateRules#refuseWhilePostcopyPaused()}. */
  private void refuseWhilePostcopyPaused() throws QmpError {
    try {
      rules.refuseWhilePostcopyPaused();
    } catch (IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void cont() throws QmpError {
    synchronized (lock) {
      try {
        rules.cont();
      } catch (IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  @Override
  public void quit() {
    onQuit.run();
  }

  // ------------------------------------------------------------------ outgoing migration

  @Override
  public void migrate(String uri, boolean detach, boolean resume) throws QmpError {
    migrate(uri, detach, resume, false, false);
  }

  @Override
  public void migrate(String uri, boolean detach, boolean resume, boolean blk, boolean inc) throws QmpError {
    if (resume) {
      // QEMU 7.2: only a postcopy-paused source; it connects to the destination's migrate-recover
      // listener and goes postcopy-recover, then postcopy-active
      try {
        migration.resume(uri);
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      }
      return;
    }
    synchronized (lock) {
      if (machine.runState() == RunState.INMIGRATE || incomingBusy()) {
        throw QmpError.generic("Guest is waiting for an incoming migration");
      }
      try {
        host.nextMigrationBlock(blk, inc);
        migration.migrate(uri);
      } catch (IllegalArgumentException | IllegalStateException e) {
        host.nextMigrationBlock(false, false);
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  /** {@code getfd}: the descriptor becomes {@code fd:NAME} for migrate and migrate-incoming. */
  @Override
  public void getfd(String name, int fd) throws QmpError {
    try {
      dev.ferry.transport.MigrationFds.put(name, fd);
    } catch (IllegalArgumentException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void closefd(String name) throws QmpError {
    try {
      dev.ferry.transport.MigrationFds.close(name);
    } catch (IllegalArgumentException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void migrateCancel() {
    migration.cancel();
  }

  @Override
  public void migrateStartPostcopy() throws QmpError {
    try {
      migration.startPostcopy();
    } catch (IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void migratePause() throws QmpError {
    try {
      migration.pausePostcopy();
    } catch (IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public long[] diskStats() {
    dev.ferry.migration.OutgoingMigration o = migration.outgoing();
    if (o == null || host.block().disks().isEmpty()
        || !o.saveOptions().get(dev.ferry.block.BlockSaveOptions.class, dev.ferry.block.BlockSaveOptions.OFF).enabled()) {
      return null; // the last migration did not send the disks
    }
    dev.ferry.block.BlockStats s = host.block().stats();
    return new long[] {s.transferredBytes(), s.remainingBytes(), s.totalBytes(), s.bulkBytes(), s.bulkNanos()};
  }

  @Override
  public dev.ferry.block.DiskCheck.Result diskCheck() throws QmpError {
    synchronized (lock) {
      if (incomingBusy()) {
        throw QmpError.generic("Guest is waiting for an incoming migration");
      }
      try {
        return host.diskCheck();
      } catch (IllegalStateException | IOException e) {
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  @Override
  public void migrateContinue(MigrationStatus state) throws QmpError {
    try {
      migration.migrateContinue(state);
    } catch (IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void migrateRecover(String uri) throws QmpError {
    try {
      migration.recover(uri, bound -> incomingBoundUri = bound);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    } catch (IOException e) {
      throw QmpError.generic("Failed to listen on " + uri + " for postcopy recovery: " + e.getMessage());
    }
  }

  @Override
  public long[] postcopyFaultLatencyUs() {
    if (migration.outgoing() != null || migration.incomingState().status() != MigrationStatus.COMPLETED) {
      return null;
    }
    dev.ferry.migration.IncomingMigration im = migration.incoming();
    dev.ferry.migration.PostcopyIncoming pc = im == null ? null : im.postcopy();
    if (pc == null) {
      return null;
    }
    org.HdrHistogram.Histogram h = pc.faultLatencyNs();
    return new long[] {
      h.getTotalCount(), h.getValueAtPercentile(50) / 1000, h.getValueAtPercentile(99) / 1000, h.getMaxValue() / 1000
    };
  }

  @Override
  public MigrationInfo queryMigrate() {
    OutgoingMigration o = migration.outgoing();
    if (o == null) {
      MigrationStatus in = migration.incomingState().status();
      String bound = incomingBoundUri;
      if (in == MigrationStatus.NONE && bound == null) {
        return MigrationInfo.NONE;
      }
      String err =
          in == MigrationStatus.FAILED || in == MigrationStatus.POSTCOPY_PAUSED ? migration.incomingState().errorDesc() : null;
      dev.ferry.migration.IncomingMigration im = migration.incoming();
      dev.ferry.migration.PostcopyIncoming pc = im == null ? null : im.postcopy();
      if (in == MigrationStatus.COMPLETED
          && pc != null
          && migration.capability(dev.ferry.migration.MigrationCapability.POSTCOPY_BLOCKTIME)) {
        // as QEMU 7.2: the destination reports blocktime once completed (0 for a precopy end)
        List<Long> perVcpu = new ArrayList<>();
        for (long v : pc.vcpuBlocktimeMs()) {
          perVcpu.add(v);
        }
        return new MigrationInfo(in, null, null, null, null, null, err, null, null, null, pc.blocktimeMs(), perVcpu, null);
      }
      // QEMU: a listening destination is in setup and shows where it listens (socket-address)
      return new MigrationInfo(in == MigrationStatus.NONE ? MigrationStatus.SETUP : in,
          null, null, null, null, null, err, null, null, bound == null ? null : List.of(bound));
    }
    MigrationStatus status = o.state().status();
    MigrationStats.Snapshot s = o.info();
    long pageSize = targetPageSize();
    dev.ferry.qmp.qapi.MigrationStats ram =
        new dev.ferry.qmp.qapi.MigrationStats(
            s.transferredBytes(),
            s.remainingBytes(),
            s.totalRamBytes(),
            s.duplicatePages(),
            0,
            s.normalPages(),
            s.normalBytes(),
            s.dirtyPagesRate(),
            s.mbps(),
            s.dirtySyncCount(),
            s.postcopyRequests(),
            pageSize,
            0,
            s.pagesPerSecond(),
            s.precopyBytes(),
            s.downtimeBytes(),
            s.postcopyBytes(),
            0);
    boolean active = status.isActive();
    Long downtime = status == MigrationStatus.COMPLETED && s.downtimeMs() >= 0 ? s.downtimeMs() : null;
    Long expected = active ? s.expectedDowntimeMs() : null;
    String err =
        status == MigrationStatus.FAILED || status == MigrationStatus.POSTCOPY_PAUSED ? o.state().errorDesc() : null;
    XbzrleCacheStats x = null;
    if (migration.capability(dev.ferry.migration.MigrationCapability.XBZRLE)) {
      long looked = s.xbzrlePages() + s.xbzrleCacheMiss();
      x =
          new XbzrleCacheStats(
              migration.parameters().xbzrleCacheSizeBytes(),
              s.xbzrleBytes(),
              s.xbzrlePages(),
              s.xbzrleCacheMiss(),
              looked == 0 ? 0.0 : (double) s.xbzrleCacheMiss() / looked,
              s.xbzrleBytes() == 0 ? 0.0 : (double) s.xbzrlePages() * pageSize / s.xbzrleBytes(),
              s.xbzrleOverflow());
    }
    // Ferry: why precopy does not converge, with the figures, and the downtime guard's last check
    // (absent before the first sync, and after the end unless the guard ran)
    boolean guardRan = s.guardExpectedDowntimeMs() >= 0 && status != MigrationStatus.SETUP;
    dev.ferry.qmp.qapi.ConvergenceInfo convergence =
        status == MigrationStatus.ACTIVE && s.dirtySyncCount() > 1 || guardRan
            ? new dev.ferry.qmp.qapi.ConvergenceInfo(s.converging(), s.dirtyBytesPerSec(), s.transferBytesPerSec(),
                s.downtimeGuardRefusals(), s.convergenceReason(), s.guardExpectedDowntimeMs(), s.guardRefused())
            : null;
    return new MigrationInfo(
        status,
        ram,
        s.totalTimeMs(),
        status == MigrationStatus.SETUP ? null : s.setupTimeMs(),
        downtime,
        expected,
        err,
        // QEMU: present while the throttle is active
        active && s.cpuThrottlePercentage() > 0 ? Long.valueOf(s.cpuThrottlePercentage()) : null,
        x,
        null,
        null,
        null,
        convergence);
  }

  private long targetPageSize() {
    long min = 4096;
    for (RamBlock b : machine.ramBlocks()) {
      min = Math.min(min, b.pageSize());
    }
    return min;
  }

  // ------------------------------------------------------------------ incoming migration

  /** QEMU's {@code -incoming defer}: the machine waits (inmigrate) for {@code migrate-incoming}. */
  public void deferIncoming() {
    synchronized (lock) {
      incomingDeferred = true;
      machine.stop(RunState.INMIGRATE);
    }
  }

  /** Whether the machine runs when an incoming load completes (false after {@code --paused}). */
  public void setAutostart(boolean autostart) {
    rules.setAutostart(autostart);
  }

  @Override
  public void migrateIncoming(String uri) throws QmpError {
    synchronized (lock) {
      if (incomingStarted) {
        throw QmpError.generic("The incoming migration has already been started");
      }
      if (!incomingDeferred) {
        throw QmpError.generic("'-incoming' was not specified on the command line");
      }
      try {
        dev.ferry.transport.MigrationUri.parse(uri);
      } catch (IllegalArgumentException e) {
        throw QmpError.generic(e.getMessage());
      }
      startIncoming(uri);
    }
  }

  /**
   * Starts waiting for an incoming migration on {@code uri} (the machine stops in {@code inmigrate})
   * on a thread of its own; the observer hears when it listens, loaded or failed.
   *
   * @throws IllegalStateException when one was already started
   */
  public void startIncoming(String uri) {
    synchronized (lock) {
      if (incomingStarted) {
        throw new IllegalStateException("The incoming migration has already been started");
      }
      incomingStarted = true;
      incomingUri = uri;
      machine.stop(RunState.INMIGRATE);
      IncomingObserver obs = incomingObserver;
      incomingThread =
          Thread.ofPlatform()
              .name("incoming " + uri)
              .daemon()
              .start(
                  () -> {
                    try {
                      host.incoming(uri, bound -> {
                        incomingBoundUri = bound;
                        obs.listening(bound);
                      });
                    } catch (dev.ferry.migration.IncomingMigration.PostcopyPausedException e) {
                      // interrupted while paused (the process ends): the observer heard of the pause
                      LOG.error("incoming postcopy migration on {} paused: {}", uri, e.getMessage());
                      return;
                    } catch (Exception e) {
                      // the observer reports it (ferry run prints one line); query-migrate has it
                      LOG.info("incoming migration on {} failed: {}", uri, e.toString());
                      obs.failed(uri, e);
                      return;
                    }
                    RunState source = host.loadedRunState();
                    synchronized (lock) {
                      rules.afterIncoming();
                    }
                    obs.loaded(source);
                  });
    }
  }

  private boolean incomingBusy() {
    Thread t = incomingThread;
    return t != null && t.isAlive();
  }

  // ------------------------------------------------------------------ capabilities and parameters

  @Override
  public List<MigrationCapabilityStatus> queryMigrateCapabilities() {
    Map<dev.ferry.migration.MigrationCapability, Boolean> caps = migration.capabilities();
    List<MigrationCapabilityStatus> out = new ArrayList<>();
    for (MigrationCapability c : MigrationCapability.values()) {
      dev.ferry.migration.MigrationCapability core = toCore(c);
      out.add(new MigrationCapabilityStatus(c, core != null && caps.getOrDefault(core, false)));
    }
    return out;
  }

  @Override
  public void setMigrateCapabilities(List<MigrationCapabilityStatus> capabilities) throws QmpError {
    Map<dev.ferry.migration.MigrationCapability, Boolean> changes =
        new EnumMap<>(dev.ferry.migration.MigrationCapability.class);
    for (MigrationCapabilityStatus c : capabilities) {
      dev.ferry.migration.MigrationCapability core = toCore(c.capability());
      if (core == null) {
        if (c.state()) {
          throw QmpError.generic("Capability '" + c.capability().qapiName() + "' is not supported by Ferry");
        }
        continue;
      }
      changes.put(core, c.state());
    }
    synchronized (lock) {
      try {
        migration.setCapabilities(changes);
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  private static dev.ferry.migration.MigrationCapability toCore(MigrationCapability c) {
    for (dev.ferry.migration.MigrationCapability m : dev.ferry.migration.MigrationCapability.values()) {
      if (m.qapiName().equals(c.qapiName())) {
        return m;
      }
    }
    return null;
  }

  @Override
  public MigrationParameters queryMigrateParameters() {
    MigrationParameters p = MigrationParameters.empty();
    for (Map.Entry<String, Object> e : migration.parameters().toMap().entrySet()) {
      MigrationParameter q = MigrationParameter.byWireName(e.getKey());
      if (q == null) {
        continue;
      }
      Object v = e.getValue();
      p = p.with(q, v instanceof Number n && !(v instanceof Long) ? Long.valueOf(n.longValue()) : v);
    }
    return p;
  }

  @Override
  public void setMigrateParameters(MigrationParameters changes) throws QmpError {
    List<String> honoured = Arrays.asList(dev.ferry.migration.MigrationParameters.NAMES);
    Map<String, Object> map = new LinkedHashMap<>();
    for (MigrationParameter p : changes.present()) {
      if (!honoured.contains(p.wireName())) {
        throw QmpError.generic("Parameter '" + p.wireName() + "' is unexpected or not supported by Ferry");
      }
      map.put(p.wireName(), changes.get(p));
    }
    synchronized (lock) {
      try {
        migration.setParameters(map);
      } catch (IllegalArgumentException e) {
        throw QmpError.generic(e.getMessage());
      }
    }
  }

  // ------------------------------------------------------------------ objects

  @Override
  public void objectAdd(String qomType, Map<String, Object> props) throws QmpError {
    try {
      migration.objects().add(qomType, props);
    } catch (IllegalArgumentException | java.io.IOException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public void objectDel(String id) throws QmpError {
    try {
      migration.objects().delete(id);
    } catch (IllegalArgumentException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  // ------------------------------------------------------------------ snapshots

  @Override
  public void snapshotSave(String name) throws QmpError {
    synchronized (lock) {
      checkNoMigration();
      try {
        snapshots.save(name);
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      } catch (IOException e) {
        throw QmpError.generic("Error saving snapshot '" + name + "': " + describe(e));
      }
    }
  }

  /**
   * Loads a snapshot as QEMU's loadvm: the machine stops, the state loads, and the machine runs on
   * if it ran before. A load that fails half-way leaves the machine in {@code internal-error} (it
   * may hold part of the state): {@code cont} refuses it until a whole snapshot loads.
   */
  @Override
  public void snapshotLoad(String name) throws QmpError {
    synchronized (lock) {
      checkNoMigration();
      String tag = resolve(name);
      try {
        rules.loadVm(() -> snapshots.load(tag));
      } catch (IllegalArgumentException | IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      } catch (IOException e) {
        // missing: nothing changed; failed half-way: the machine is left in internal-error, which
        // cont refuses ("Resetting the Virtual Machine is required") until a whole snapshot loads
        throw QmpError.generic("Error loading snapshot '" + name + "': " + describe(e));
      }
    }
  }

  @Override
  public void snapshotDelete(String name) throws QmpError {
    synchronized (lock) {
      try {
        snapshots.delete(resolve(name));
      } catch (IllegalArgumentException e) {
        throw QmpError.generic(e.getMessage());
      } catch (IOException e) {
        throw QmpError.generic("Error deleting snapshot '" + name + "': " + describe(e));
      }
    }
  }

  /** A snapshot by tag, or by id when no tag matches. */
  private String resolve(String nameOrId) throws QmpError {
    try {
      List<SnapshotStore.Snapshot> all = snapshots.list();
      for (SnapshotStore.Snapshot s : all) {
        if (s.name().equals(nameOrId)) {
          return s.name();
        }
      }
      for (SnapshotStore.Snapshot s : all) {
        if (s.id().equals(nameOrId)) {
          return s.name();
        }
      }
    } catch (IOException e) {
      throw QmpError.generic("cannot list snapshots in " + snapshots.directory() + ": " + describe(e));
    }
    throw QmpError.generic("Snapshot '" + nameOrId + "' does not exist in " + snapshots.directory());
  }

  @Override
  public List<SnapshotInfo> querySnapshots() throws QmpError {
    try {
      List<SnapshotInfo> out = new ArrayList<>();
      for (SnapshotStore.Snapshot s : snapshots.list()) {
        out.add(
            new SnapshotInfo(
                s.id(),
                s.name(),
                s.sizeBytes(),
                s.date().getEpochSecond(),
                s.date().getNano(),
                s.vmClockNs() / 1_000_000_000L,
                s.vmClockNs() % 1_000_000_000L,
                null));
      }
      return out;
    } catch (IOException e) {
      throw QmpError.generic("cannot list snapshots in " + snapshots.directory() + ": " + describe(e));
    }
  }

  private void checkNoMigration() throws QmpError {
    try {
      rules.refuseDuringMigration(incomingBusy());
    } catch (IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  private static String describe(IOException e) {
    if (e instanceof NoSuchFileException n && n.getReason() != null) {
      return n.getReason();
    }
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }

  // ------------------------------------------------------------------ stress check

  /** Checks the stress pattern; a running machine is paused for the check and resumed after. */
  @Override
  public StressCheckInfo stressCheck() throws QmpError {
    synchronized (lock) {
      refuseWhilePostcopyPaused();
      RunState before = machine.runState();
      if (before == RunState.INMIGRATE || before == RunState.RESTORE_VM || incomingBusy()) {
        throw QmpError.generic("Guest is waiting for an incoming migration");
      }
      boolean wasRunning = before.isRunning();
      if (wasRunning) {
        machine.stop(RunState.PAUSED);
      }
      try {
        StressCheck.Result r = StressCheck.check(machine);
        return new StressCheckInfo(
            r.passed(),
            r.pagesChecked(),
            r.badPageCount(),
            r.firstBadPages().stream().map(Object::toString).toList());
      } finally {
        if (wasRunning) {
          machine.resume();
        }
      }
    }
  }

  // ------------------------------------------------------------------ cpus, dirty rate (HMP info)

  /** The guest's dirty rate by page sampling ({@code calc-dirty-rate}); made on first use. */
  private volatile dev.ferry.migration.DirtyRateMeasurement dirtyRate;

  @Override
  public List<dev.ferry.qmp.qapi.CpuInfoFast> queryCpus() {
    List<Long> tids = machine.vcpuThreadIds();
    List<dev.ferry.qmp.qapi.CpuInfoFast> l = new java.util.ArrayList<>();
    for (int i = 0; i < machine.cpus().size(); i++) {
      l.add(new dev.ferry.qmp.qapi.CpuInfoFast(i, "/machine/cpu[" + i + "]", tids.get(i), "ferry"));
    }
    return l;
  }

  @Override
  public dev.ferry.qmp.qapi.CpuRegisters cpuRegisters(int index) throws QmpError {
    if (index < 0 || index >= machine.cpus().size()) {
      throw QmpError.generic("CPU " + index + " does not exist (the machine has " + machine.cpus().size() + ")");
    }
    dev.ferry.machine.CpuDevice c = machine.cpu(index);
    List<Long> regs = java.util.Arrays.stream(c.regs()).boxed().toList();
    List<Long> xregs = new java.util.ArrayList<>();
    for (int i = 0; i < dev.ferry.machine.CpuDevice.XREG_COUNT; i++) {
      xregs.add(c.xreg(i));
    }
    return new dev.ferry.qmp.qapi.CpuRegisters(index, c.programName(), c.pc(), c.steps(), Integer.toUnsignedLong(c.flags()), regs, xregs);
  }

  private dev.ferry.migration.DirtyRateMeasurement dirtyRate() {
    dev.ferry.migration.DirtyRateMeasurement d = dirtyRate;
    if (d == null) {
      synchronized (lock) {
        if (dirtyRate == null) {
          dirtyRate = new dev.ferry.migration.DirtyRateMeasurement(machine.ramBlocks());
        }
        d = dirtyRate;
      }
    }
    return d;
  }

  @Override
  public void calcDirtyRate(long calcTimeS, int samplePagesPerGiB) throws QmpError {
    try {
      dirtyRate().start(calcTimeS, samplePagesPerGiB);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw QmpError.generic(e.getMessage());
    }
  }

  @Override
  public dev.ferry.qmp.qapi.DirtyRateInfo queryDirtyRate() {
    dev.ferry.migration.DirtyRateMeasurement.Result r = dirtyRate().query();
    return new dev.ferry.qmp.qapi.DirtyRateInfo(
        r.status().qapiName(), r.startTimeS(), r.calcTimeS(), r.samplePagesPerGiB(), "page-sampling", r.dirtyRateMiBPerSec());
  }

  // ------------------------------------------------------------------ digest

  /** The exact digest; a running machine is paused for it and resumed after (see MachineHost). */
  @Override
  public MemoryDigest memoryDigest() throws QmpError {
    synchronized (lock) {
      if (incomingBusy()) {
        throw QmpError.generic("Guest is waiting for an incoming migration");
      }
      try {
        return host.memoryDigest();
      } catch (IllegalStateException e) {
        throw QmpError.generic(e.getMessage());
      }
    }
  }
}
