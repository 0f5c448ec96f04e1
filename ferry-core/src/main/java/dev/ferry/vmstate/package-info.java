/**
 * VMState: declarative device state in QEMU 7.2's wire format (QEMU's vmstate.c and
 * vmstate-types.c), done with typed builders and lambdas instead of offsets and macros.
 *
 * <h2>Design</h2>
 *
 * <p>A {@link dev.ferry.vmstate.VMStateDescription VMStateDescription&lt;T&gt;} is built once, is
 * immutable and holds no per-object state, so it serves all instances and threads. Each field is
 * an accessor pair chosen over annotations or reflection: a getter and a setter lambda (e.g.
 * {@code ToLongFunction<T>} and {@code ObjLongConsumer<T>} for integers), which keeps fields
 * private, avoids boxing, and lets a device map wire fields onto any Java shape. Arrays are Java
 * arrays of the same width ({@code byte[]} for (u)int8, {@code short[]}, {@code int[]},
 * {@code long[]}), unsigned values ride in them as raw bits. Scalars are range-checked on save
 * ({@code uint8} must be 0..255, and so on); uint64 is a Java long's 64 bits.
 *
 * <pre>{@code
 * VMStateDescription<Timer> TIMER = VMStateDescription.<Timer>builder("timer")
 *     .version(2).minimumVersion(1)
 *     .int64("cpu_ticks_offset", t -> t.ticks, (t, v) -> t.ticks = v)
 *     .unused(8)
 *     .int64("cpu_clock_offset", t -> t.clock, (t, v) -> t.clock = v).since(2)
 *     .build();
 * FerryMachine.builder().ram("ram", 64 << 20).device("timer", TIMER, timer);  // saved, loaded, migrated
 * }</pre>
 *
 * <h2>Semantics (spec sections 6 and 7)</h2>
 *
 * <ul>
 *   <li>Save: {@code preSave}, the present fields, each needed subsection ({@code 0x05}, counted
 *       name, be32 version, body), then {@code postSave} (also when a field failed). A field is
 *       present when its exists-test holds for the version, or, without a test, when its {@code
 *       since} version is at most the version.
 *   <li>Load: a version above {@code version} or below {@code minimumVersion} fails with {@link
 *       dev.ferry.stream.VersionMismatchException}; then {@code preLoad}, the present fields
 *       (exists-tests see the fields read so far), subsections found by peeking (a subsection
 *       carrying this description's name as prefix but not declared fails, naming it; one not
 *       sent leaves what {@code preLoad} set), and {@code postLoad(version)} last, after the
 *       subsections' own postLoads.
 *   <li>Variable arrays and buffers never carry their count: it is the value of an earlier
 *       integer field. On load the count is checked against the declared maximum before anything
 *       is allocated, then the array is reallocated to exactly that length (struct lists are
 *       trimmed or extended, existing elements loaded in place).
 *   <li>Every load failure, including a RuntimeException thrown by a device's setter or hook, is a
 *       {@link dev.ferry.stream.MigrationStreamException} with the field path ({@code regs[3]},
 *       {@code cpu/sub.field}), the stream offset, and the versions in the message; the
 *       section stream adds the section. Programming errors on save (a value out
 *       of range, a short array) are IllegalStateExceptions.
 *   <li>Saving with a {@link dev.ferry.stream.QemuJsonWriter} describes the body exactly as QEMU
 *       7.2's vmdesc does, byte for byte: one object per element, repeated names numbered {@code
 *       name[k]}, arrays compressed to {@code array_len} unless exists-tested or of structs with
 *       subsections, {@code size} measured in stream bytes.
 *   <li>{@link dev.ferry.vmstate.VMStateDump} and {@link dev.ferry.vmstate.VMStateCompat} give the
 *       {@code -dump-vmstate} view of descriptions and the static compatibility check.
 * </ul>
 *
 * <p>Differences from QEMU: subsection versions are read as be32 and checked (7.2 truncates to 8
 * bits); minimumVersion defaults to version; a field cannot have both {@code since} and {@code
 * existsIf}; a subsection's name must start with its parent's (QEMU only finds it then). As in
 * QEMU, subsections are found by peeking, so a byte 0x05 that follows a nested struct and is
 * followed by a name with that struct's prefix is taken as a subsection: name subsections with a
 * {@code /} after the parent's name and avoid struct names that prefix their parent's.
 */
package dev.ferry.vmstate;
