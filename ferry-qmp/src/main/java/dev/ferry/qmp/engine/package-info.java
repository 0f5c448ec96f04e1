/**
 * The monitor backend over Ferry's engine: {@link dev.ferry.qmp.engine.EngineBackend} implements
 * {@link dev.ferry.qmp.MonitorBackend} with a {@link dev.ferry.machine.MachineHost} and a {@link
 * dev.ferry.machine.SnapshotStore}, so QMP and HMP drive a real machine and its migrations.
 */
package dev.ferry.qmp.engine;
