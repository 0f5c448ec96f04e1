/**
 * Ferry as a library: build a machine, run your own code and devices in it, save, load and migrate
 * it live. This package is the whole public API of {@code ferry-core}; everything else (the stream
 * codecs, the RAM internals, the migration thread) is internal and may change between releases.
 * Device state is described with {@link dev.ferry.vmstate.VMStateDescription}, the other exported
 * package.
 *
 * <pre>{@code
 * record Counter(long[] value) {}
 * static final VMStateDescription<Counter> COUNTER = VMStateDescription.<Counter>builder("counter")
 *     .version(1)
 *     .uint64("value", c -> c.value()[0], (c, v) -> c.value()[0] = v)
 *     .build();
 *
 * Counter counter = new Counter(new long[1]);
 * try (FerryMachine m = FerryMachine.builder()
 *         .ram("heap", 64 << 20)
 *         .device("counter", COUNTER, counter)
 *         .build()) {
 *   m.start();
 *   try (GuestThread t = m.openGuestThread()) {   // a service thread: steps pause with the guest
 *     t.enterStep();
 *     try {
 *       t.putLong(0, 0, t.getLong(0, 0) + 1);
 *       counter.value()[0]++;
 *     } finally {
 *       t.exitStep();
 *     }
 *   }
 *   Migration mig = m.migrate("tcp:dest:4444", MigrationOptions.builder().build());
 *   mig.await(Duration.ofMinutes(1));            // completed: the source stays paused
 * }
 * }</pre>
 *
 * <p><b>Design.</b> The facade is thin: {@link FerryMachine} wraps the engine's machine, its save
 * and migration wiring and its run-state rules (the same ones the QMP monitor applies), and maps
 * the engine's values to the small types here. The embedder's code runs as service threads ({@link
 * GuestThread}) or as the vCPUs' program ({@link VcpuProgram}, in the engine's own vCPU loop).
 * Options are typed ({@link MigrationOptions}, {@link TlsOptions}); a migration is a handle ({@link
 * Migration}) bound to that one migration, with status, statistics, events, {@code await} and
 * postcopy recovery.
 * Names follow QEMU's where QEMU has the concept (run states, migration statuses, capabilities and
 * parameters by their QAPI names), so the API, the monitor and the stream speak the same words.
 */
package dev.ferry.api;
