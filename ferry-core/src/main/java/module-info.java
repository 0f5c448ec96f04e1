/**
 * Ferry's engine: live migration and snapshots of machines that run on the JVM, speaking QEMU
 * 7.2's migration stream.
 *
 * <p>The public API is {@link dev.ferry.api} (machine, devices, save, load, migrate) and {@link
 * dev.ferry.vmstate} (device state descriptions). The engine's other packages (stream codecs, RAM
 * internals, the migration thread, transports, the built-in machine) are internal: exported only
 * to Ferry's own modules, which drive the engine below the API (the QMP monitor, the CLI, the
 * benchmarks).
 */
module dev.ferry.core {
  requires transitive org.slf4j;
  requires jdk.jfr;
  requires HdrHistogram; // no module name of its own: the automatic one from its jar
  requires com.github.luben.zstd_jni; // multifd zstd compression
  requires jdk.net;
  requires java.naming;

  exports dev.ferry.api;
  exports dev.ferry.vmstate;

  exports dev.ferry.block to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.machine to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.migration to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.ram to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.savevm to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.stream to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.transport to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
  exports dev.ferry.vmstate.codec to dev.ferry.qmp, dev.ferry.cli, dev.ferry.bench;
}
