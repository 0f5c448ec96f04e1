package dev.ferry.qmp;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.qmp.qapi.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.machine.RunState;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/** A scripted backend: records calls, keeps simple state, emits events like the engine would. */
public final class FakeMonitorBackend implements MonitorBackend {
  final List<String> calls = new CopyOnWriteArrayList<>();
  final List<MonitorEventSink> sinks = new CopyOnWriteArrayList<>();
  final AtomicInteger quits = new AtomicInteger();
  volatile RunState runState = RunState.RUNNING;
  volatile MigrationInfo migration = MigrationInfo.NONE;
  /** When set, migrate-incoming blocks until it counts down (for the mid-command disconnect test). */
  volatile CountDownLatch incomingGate;
  private final Map<MigrationCapability, Boolean> caps = new EnumMap<>(MigrationCapability.class);
  private MigrationParameters params;
  private final List<SnapshotInfo> snapshots = new ArrayList<>();

  public FakeMonitorBackend() {
    for (MigrationCapability c : MigrationCapability.values()) {
      caps.put(c, false);
    }
    params =
        MigrationParameters.empty()
            .with(MigrationParameter.MAX_BANDWIDTH, 134217728L)
            .with(MigrationParameter.DOWNTIME_LIMIT, 300L)
            .with(MigrationParameter.XBZRLE_CACHE_SIZE, 67108864L)
            .with(MigrationParameter.MAX_POSTCOPY_BANDWIDTH, 0L)
            .with(MigrationParameter.TLS_CREDS, "")
            .with(MigrationParameter.MULTIFD_COMPRESSION, "none")
            .with(MigrationParameter.CPU_THROTTLE_TAILSLOW, false);
  }

  void emit(MonitorEvent e) {
    sinks.forEach(s -> s.emit(e));
  }

  @Override
  public void attach(MonitorEventSink events) {
    sinks.add(events);
  }

  @Override
  public StatusInfo queryStatus() {
    return StatusInfo.of(runState);
  }

  @Override
  public void stop() {
    calls.add("stop");
    if (runState == RunState.RUNNING) {
      runState = RunState.PAUSED;
      emit(new MonitorEvent.Stop());
    }
  }

  @Override
  public void cont() throws QmpError {
    calls.add("cont");
    if (runState == RunState.INMIGRATE) {
      throw QmpError.generic("Migration is not finalized yet");
    }
    runState = RunState.RUNNING;
    emit(new MonitorEvent.Resume());
  }

  @Override
  public void quit() {
    quits.incrementAndGet();
  }

  @Override
  public void migrate(String uri, boolean detach, boolean resume) throws QmpError {
    calls.add("migrate " + uri + " detach=" + detach + " resume=" + resume);
    if (!uri.startsWith("tcp:") && !uri.startsWith("unix:")) {
      throw QmpError.generic("unknown migration protocol: " + uri);
    }
    migration =
        new MigrationInfo(
            MigrationStatus.COMPLETED,
            new MigrationStats(
                4 << 20, 0, 8 << 20, 10, 0, 1024, 4 << 20, 0, 268.44, 2, 0, 4096, 0, 6000, 4 << 20,
                8192, 0, 0),
            1234L,
            5L,
            42L,
            null,
            null,
            null);
    if (caps.get(MigrationCapability.EVENTS)) {
      emit(new MonitorEvent.Migration(MigrationStatus.SETUP));
      emit(new MonitorEvent.MigrationPass(1));
      emit(new MonitorEvent.Migration(MigrationStatus.COMPLETED));
    }
  }

  @Override
  public void migrateIncoming(String uri) throws QmpError {
    calls.add("migrate-incoming " + uri);
    CountDownLatch gate = incomingGate;
    if (gate != null) {
      try {
        gate.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw QmpError.generic("interrupted");
      }
    }
  }

  @Override
  public void migrateCancel() {
    calls.add("migrate_cancel");
  }

  @Override
  public void migrateStartPostcopy() throws QmpError {
    throw QmpError.generic("Enable postcopy with migrate_set_capability before the start of migration");
  }

  @Override
  public MigrationInfo queryMigrate() {
    return migration;
  }

  @Override
  public synchronized List<MigrationCapabilityStatus> queryMigrateCapabilities() {
    List<MigrationCapabilityStatus> l = new ArrayList<>();
    caps.forEach((c, s) -> l.add(new MigrationCapabilityStatus(c, s)));
    return l;
  }

  @Override
  public synchronized void setMigrateCapabilities(List<MigrationCapabilityStatus> list)
      throws QmpError {
    for (MigrationCapabilityStatus c : list) {
      if (c.capability() == MigrationCapability.RDMA_PIN_ALL && c.state()) {
        throw QmpError.generic("Ferry has no RDMA");
      }
    }
    list.forEach(c -> caps.put(c.capability(), c.state()));
  }

  @Override
  public synchronized MigrationParameters queryMigrateParameters() {
    return params;
  }

  @Override
  public synchronized void setMigrateParameters(MigrationParameters changes) throws QmpError {
    for (MigrationParameter p : changes.present()) {
      if (!params.has(p)) {
        throw QmpError.generic("Parameter '" + p.wireName() + "' is not supported by Ferry");
      }
    }
    if (changes.has(MigrationParameter.DOWNTIME_LIMIT)
        && changes.getLong(MigrationParameter.DOWNTIME_LIMIT) > 2_000_000) {
      throw QmpError.generic(
          "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds");
    }
    params = params.merge(changes);
  }

  @Override
  public synchronized void snapshotSave(String name) {
    snapshots.removeIf(s -> s.name().equals(name));
    snapshots.add(
        new SnapshotInfo(
            Integer.toString(snapshots.size() + 1), name, 1_436_549, 1_700_000_000L, 0, 3723, 456_000_000, null));
  }

  @Override
  public synchronized void snapshotLoad(String name) throws QmpError {
    if (snapshots.stream().noneMatch(s -> s.name().equals(name))) {
      throw QmpError.generic("Snapshot '" + name + "' does not exist");
    }
    calls.add("loadvm " + name);
  }

  @Override
  public synchronized void snapshotDelete(String name) throws QmpError {
    if (!snapshots.removeIf(s -> s.name().equals(name))) {
      throw QmpError.generic("Snapshot '" + name + "' does not exist");
    }
  }

  @Override
  public synchronized List<SnapshotInfo> querySnapshots() {
    return List.copyOf(snapshots);
  }
}
