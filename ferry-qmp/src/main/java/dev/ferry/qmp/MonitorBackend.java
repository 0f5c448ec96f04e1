package dev.ferry.qmp;

import dev.ferry.machine.MemoryDigest;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import dev.ferry.qmp.qapi.StressCheckInfo;
import dev.ferry.qmp.qapi.VersionInfo;
import java.util.List;

/**
 * What the monitor needs from the machine and migration engine. The QMP layer checks arguments
 * against the QAPI schema before calling in, so every argument here is well-typed; the backend checks
 * meaning (state, ranges, support) and fails with a {@link QmpError} worded as QEMU words it.
 *
 * <p>Calls come from any client's thread, possibly at the same time: implementations are
 * thread-safe. Commands return when the command is done, except {@link #migrate} and {@link
 * #migrateIncoming}, which start the work and return (progress is read with {@link #queryMigrate}).
 */
public interface MonitorBackend {

  /**
   * Called once by each server that serves this backend, before any command, with the sink for
   * asynchronous events (STOP, RESUME, MIGRATION when the {@code events} capability is on,
   * MIGRATION_PASS). Default: ignores it.
   */
  default void attach(MonitorEventSink events) {}

  /** The greeting's and {@code query-version}'s answer. */
  default VersionInfo version() {
    return VersionInfo.FERRY;
  }

  /** {@code query-status}. */
  StatusInfo queryStatus();

  /** {@code stop}: pause the machine (emit STOP if it was running). */
  void stop() throws QmpError;

  /** {@code cont}: resume the machine (emit RESUME). */
  void cont() throws QmpError;

  /**
   * {@code quit}: called after the reply has been written; end the process (or the machine) soon.
   */
  void quit();

  /**
   * {@code migrate}: start an outgoing migration to {@code uri} ({@code tcp:}, {@code unix:}, {@code
   * exec:}, {@code fd:}, {@code file:}). {@code detach} is accepted and ignored, as in QEMU's QMP;
   * {@code resume} asks to resume a paused postcopy.
   */
  void migrate(String uri, boolean detach, boolean resume) throws QmpError;

  /**
   * {@code migrate} with QEMU's {@code blk} (migrate the disks too) and {@code inc} (incrementally)
   * arguments, for this migration only. Default: refused unless both are false.
   */
  default void migrate(String uri, boolean detach, boolean resume, boolean blk, boolean inc) throws QmpError {
    if (blk || inc) {
      throw QmpError.generic("this monitor does not migrate block devices (blk/inc)");
    }
    migrate(uri, detach, resume);
  }

  /**
   * The {@code disk} member of {@code query-migrate} (block migration): transferred, remaining and
   * total bytes, then (Ferry) the bulk phase's bytes and nanoseconds (0 before it ended); null when
   * the migration moves no disk. Default: null.
   */
  default long[] diskStats() {
    return null;
  }

  /**
   * Ferry's {@code ferry-disk-check}: verifies the {@code disk} program's records on every drive
   * (pausing a running machine for it). Default: not available.
   */
  default dev.ferry.block.DiskCheck.Result diskCheck() throws QmpError {
    throw QmpError.generic("this monitor has no machine to check");
  }

  /** {@code migrate-incoming}: listen on {@code uri} for an incoming migration. */
  void migrateIncoming(String uri) throws QmpError;

  /**
   * {@code getfd}: {@code fd} (received over the monitor with SCM_RIGHTS; now the backend's) is to
   * be known as {@code name}, e.g. for {@code migrate fd:NAME}. Default: refuses and closes it.
   */
  default void getfd(String name, int fd) throws QmpError {
    dev.ferry.transport.InheritedFds.closeQuietly(fd);
    throw QmpError.generic("this monitor does not take file descriptors");
  }

  /** {@code closefd}: closes the descriptor {@code getfd} named {@code name}. */
  default void closefd(String name) throws QmpError {
    throw QmpError.generic("File descriptor named '" + name + "' not found");
  }

  /** {@code migrate_cancel}: cancel the outgoing migration (no error when none runs). */
  void migrateCancel() throws QmpError;

  /** {@code migrate-start-postcopy}: switch an active migration to postcopy. */
  void migrateStartPostcopy() throws QmpError;

  /**
   * {@code migrate-pause}: in postcopy-active (source or destination) the connection is shut and
   * both sides go postcopy-paused. Default: QEMU's refusal.
   */
  default void migratePause() throws QmpError {
    throw QmpError.generic("migrate-pause is currently only supported during postcopy-active state");
  }

  /**
   * {@code migrate-recover}: a postcopy-paused destination listens on {@code uri} for the source's
   * {@code migrate {resume: true}}. Default: QEMU's refusal.
   */
  default void migrateRecover(String uri) throws QmpError {
    throw QmpError.generic("Migrate recover can only be run when postcopy is paused.");
  }

  /**
   * {@code migrate-continue}: release an outgoing migration paused in {@code pre-switchover}
   * (capability {@code pause-before-switchover}).
   */
  default void migrateContinue(dev.ferry.migration.MigrationStatus state) throws QmpError {
    throw QmpError.generic("Migration not in expected state: none");
  }

  /** {@code query-migrate}. */
  MigrationInfo queryMigrate();

  /**
   * A completed postcopy destination's fault latency (Ferry's {@code x-ferry-postcopy-fault-latency}
   * member of {@code query-migrate}): count, p50, p99 and max in microseconds; null when there is
   * none (not a destination, not completed, no postcopy).
   */
  default long[] postcopyFaultLatencyUs() {
    return null;
  }

  /** {@code query-migrate-capabilities}: every capability, in {@code MigrationCapability} order. */
  List<MigrationCapabilityStatus> queryMigrateCapabilities();

  /** {@code migrate-set-capabilities}: all or nothing. */
  void setMigrateCapabilities(List<MigrationCapabilityStatus> capabilities) throws QmpError;

  /** {@code query-migrate-parameters}: the parameters the engine honours, with their values. */
  MigrationParameters queryMigrateParameters();

  /**
   * {@code migrate-set-parameters}: only the given ones change; all or nothing. Setting a parameter
   * the engine does not honour is an error.
   */
  void setMigrateParameters(MigrationParameters changes) throws QmpError;

  /** Saves the whole machine as snapshot {@code name} (replacing one of that name), synchronously. */
  void snapshotSave(String name) throws QmpError;

  /** Loads snapshot {@code name} (by tag, or by id), synchronously. */
  void snapshotLoad(String name) throws QmpError;

  /** Deletes snapshot {@code name} (by tag, or by id). */
  void snapshotDelete(String name) throws QmpError;

  /**
   * {@code object-add}: creates a user object ({@code tls-creds-x509}, {@code authz-simple}, {@code
   * authz-list}); {@code props} are the members besides {@code qom-type} ({@code id} among them),
   * as Strings, Booleans, and Lists of Maps. Default: no objects.
   */
  default void objectAdd(String qomType, java.util.Map<String, Object> props) throws QmpError {
    throw QmpError.generic("invalid object type: " + qomType);
  }

  /** {@code object-del}: removes a user object. */
  default void objectDel(String id) throws QmpError {
    throw QmpError.generic("object '" + id + "' not found");
  }

  /** The snapshots, oldest first. */
  List<SnapshotInfo> querySnapshots() throws QmpError;

  /**
   * Ferry's {@code ferry-stress-check}: checks guest RAM for the {@code stress} pattern (pausing a
   * running machine for the check and resuming it after). Default: not available.
   */
  default StressCheckInfo stressCheck() throws QmpError {
    throw QmpError.generic("this monitor has no machine to check");
  }

  /** {@code query-cpus-fast}. Default: not available. */
  default List<dev.ferry.qmp.qapi.CpuInfoFast> queryCpus() throws QmpError {
    throw QmpError.generic("this monitor has no machine");
  }

  /** Ferry's {@code ferry-query-cpu-registers} for CPU {@code index}. Default: not available. */
  default dev.ferry.qmp.qapi.CpuRegisters cpuRegisters(int index) throws QmpError {
    throw QmpError.generic("this monitor has no machine");
  }

  /**
   * {@code calc-dirty-rate}: starts measuring the guest's dirty rate over {@code calcTimeS} seconds
   * (page sampling, {@code samplePagesPerGiB} pages per GiB) and returns at once.
   */
  default void calcDirtyRate(long calcTimeS, int samplePagesPerGiB) throws QmpError {
    throw QmpError.generic("this monitor has no machine");
  }

  /** {@code query-dirty-rate}. */
  default dev.ferry.qmp.qapi.DirtyRateInfo queryDirtyRate() throws QmpError {
    throw QmpError.generic("this monitor has no machine");
  }

  /**
   * Ferry's {@code ferry-memory-digest}: the exact digest of guest RAM and device state (pausing a
   * running machine for it and resuming it after), with page digests when {@code pages}. Default:
   * not available.
   */
  default MemoryDigest memoryDigest() throws QmpError {
    throw QmpError.generic("this monitor has no machine to digest");
  }
}
