package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.vmstate.codec.VMStateCodec;
import dev.ferry.vmstate.FieldKind.BoolField;
import dev.ferry.vmstate.FieldKind.BufferField;
import dev.ferry.vmstate.FieldKind.CountRef;
import dev.ferry.vmstate.FieldKind.Float64Field;
import dev.ferry.vmstate.FieldKind.IntArrayField;
import dev.ferry.vmstate.FieldKind.IntField;
import dev.ferry.vmstate.FieldKind.IntMode;
import dev.ferry.vmstate.FieldKind.StructArrayField;
import dev.ferry.vmstate.FieldKind.StructField;
import dev.ferry.vmstate.FieldKind.UnusedField;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.BiPredicate;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.ObjDoubleConsumer;
import java.util.function.ObjIntConsumer;
import java.util.function.ObjLongConsumer;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * The declared migration layout of objects of type {@code T} (QEMU's VMStateDescription): a name,
 * a version and the oldest version it still loads, ordered fields, subsections, and hooks. It is
 * immutable and holds no per-object state, so one description serves every instance and thread.
 *
 * <pre>{@code
 * static final VMStateDescription<Pit> PIT = VMStateDescription.<Pit>builder("pit")
 *     .version(3).minimumVersion(2)
 *     .uint32("flags", p -> p.flags, (p, v) -> p.flags = (int) v)
 *     .uint8("count", p -> p.count, (p, v) -> p.count = (int) v)
 *     .uint16VarArray("latches", "count", 16, p -> p.latches, (p, a) -> p.latches = a)
 *     .int64("next_ns", p -> p.nextNs, (p, v) -> p.nextNs = v).since(3)
 *     .subsection(PIT_IRQ, p -> p.irq)
 *     .postLoad((p, version) -> p.rearm())
 *     .build();
 * }</pre>
 *
 * @param <T> the type of the objects it saves and loads
 */
public final class VMStateDescription<T> {
  private final String name;
  private final int version;
  private final int minimumVersion;
  private final int priority;
  final Consumer<T> preSave;
  final Consumer<T> postSave;
  final Consumer<T> preLoad;
  final ObjIntConsumer<T> postLoad;
  private final Predicate<T> needed;
  final List<Slot<T>> slots;
  final List<Subsection<T, ?>> subsections;

  private VMStateDescription(Builder<T> b, List<Slot<T>> slots) {
    this.name = b.name;
    this.version = b.version;
    this.minimumVersion = b.minimumVersion < 0 ? b.version : b.minimumVersion;
    this.priority = b.priority;
    this.preSave = b.preSave;
    this.postSave = b.postSave;
    this.preLoad = b.preLoad;
    this.postLoad = b.postLoad;
    this.needed = b.needed;
    this.slots = List.copyOf(slots);
    this.subsections = List.copyOf(b.subsections);
  }

  /** Starts a description named {@code name} (for a subsection: {@code "<parent>/<what>"}). */
  public static <T> Builder<T> builder(String name) {
    return new Builder<>(name);
  }

  /** The name, as the stream and the vmdesc carry it. */
  public String name() {
    return name;
  }

  /** The version this side writes and the newest it loads (QEMU version_id). */
  public int version() {
    return version;
  }

  /** The oldest version this side loads (QEMU minimum_version_id); defaults to {@link #version()}. */
  public int minimumVersion() {
    return minimumVersion;
  }

  /** Save/load order among sections: higher first (QEMU MigrationPriority). */
  public int priority() {
    return priority;
  }

  /** Whether {@code obj} is sent at all (as a subsection, or as a top-level section). */
  public boolean isNeeded(T obj) {
    return needed == null || needed.test(obj);
  }

  static {
    // the wire side is internal (dev.ferry.vmstate.codec): it reaches the interpreter through this
    VMStateCodec.install(
        new VMStateCodec.Access() {
          @Override
          public <U> void save(VMStateDescription<U> d, MigrationOutput out, U obj, QemuJsonWriter desc)
              throws IOException {
            VMStateWriter.save(d, out, obj, desc);
          }

          @Override
          public <U> void load(VMStateDescription<U> d, MigrationInput in, U obj, int streamVersion)
              throws IOException {
            VMStateReader.load(d, in, obj, streamVersion);
          }
        });
  }

  /** Writes {@code obj}'s body (no header; subsections included); for this package's tests. */
  void save(MigrationOutput out, T obj) throws IOException {
    VMStateWriter.save(this, out, obj, null);
  }

  /** Writes {@code obj}'s body and its vmdesc into {@code desc}; for this package's tests. */
  void save(MigrationOutput out, T obj, QemuJsonWriter desc) throws IOException {
    VMStateWriter.save(this, out, obj, Objects.requireNonNull(desc, "desc"));
  }

  /** Reads a body written at {@code streamVersion} into {@code obj}; for this package's tests. */
  void load(MigrationInput in, T obj, int streamVersion) throws IOException {
    VMStateReader.load(this, in, obj, streamVersion);
  }

  /** The static shape of this description for {@code -dump-vmstate}-style JSON. */
  public VMStateDump.Description dump() {
    List<VMStateDump.Field> fields = new ArrayList<>();
    for (Slot<T> s : slots) {
      VMStateDescription<?> nested = s.kind().struct();
      fields.add(
          new VMStateDump.Field(
              s.kind().name,
              s.existsIf() == null ? s.sinceVersion() : 0,
              s.existsIf() != null,
              s.kind().elementSizeBytes(),
              nested == null ? null : nested.dump()));
    }
    List<VMStateDump.Description> subs = new ArrayList<>();
    for (Subsection<T, ?> sub : subsections) {
      subs.add(sub.vmsd().dump());
    }
    return new VMStateDump.Description(name, version, minimumVersion, fields, subs);
  }

  Subsection<T, ?> subsection(String subName) {
    for (Subsection<T, ?> s : subsections) {
      if (s.vmsd().name().equals(subName)) {
        return s;
      }
    }
    return null;
  }

  /** Wire bytes of one body when every field is fixed and always present, else 0 (dump only). */
  int fixedBodySizeBytes() {
    long total = 0;
    for (Slot<T> s : slots) {
      FieldKind<T> k = s.kind();
      int count =
          switch (k) {
            case IntArrayField<T> a -> a.count == null ? a.fixedCount : -1;
            case StructArrayField<T, ?> a -> a.count == null ? a.fixedCount : -1;
            case BufferField<T> b -> b.size == null ? 1 : -1;
            default -> 1;
          };
      int size = k.elementSizeBytes();
      if (count < 0 || (size == 0 && k.struct() != null)) {
        return 0;
      }
      total += (long) count * size;
    }
    return (int) Math.min(total, Integer.MAX_VALUE);
  }

  /** True when the vmdesc may describe an array of this struct by its first element (QEMU rule). */
  boolean compressibleAsStruct() {
    if (!subsections.isEmpty()) {
      return false;
    }
    for (Slot<T> s : slots) {
      if (!s.compressible()) {
        return false;
      }
    }
    return true;
  }

  @Override
  public String toString() {
    return "VMStateDescription[" + name + " v" + version + " (min " + minimumVersion + "), "
        + slots.size() + " fields, " + subsections.size() + " subsections]";
  }

  /**
   * Collects a description. Field methods append a field; {@link #since} and {@link #existsIf}
   * modify the field added last. Count and size fields of variable arrays and buffers are named by
   * their field name and must be declared earlier as an 8/16/32-bit integer field.
   */
  public static final class Builder<T> {
    private final String name;
    private int version;
    private int minimumVersion = -1;
    private int priority;
    private Consumer<T> preSave;
    private Consumer<T> postSave;
    private Consumer<T> preLoad;
    private ObjIntConsumer<T> postLoad;
    private Predicate<T> needed;
    private final List<FieldKind<T>> kinds = new ArrayList<>();
    private final List<Integer> since = new ArrayList<>();
    private final List<BiPredicate<T, Integer>> exists = new ArrayList<>();
    private final List<Subsection<T, ?>> subsections = new ArrayList<>();

    private Builder(String name) {
      Objects.requireNonNull(name, "name");
      if (name.isEmpty() || name.getBytes(StandardCharsets.ISO_8859_1).length > 255
          || !StandardCharsets.US_ASCII.newEncoder().canEncode(name)) {
        throw new IllegalArgumentException("name must be 1..255 ASCII characters: '" + name + "'");
      }
      this.name = name;
    }

    /** The version this description saves at (default 1). */
    public Builder<T> version(int version) {
      if (version < 0) {
        throw new IllegalArgumentException("version must be >= 0: " + version);
      }
      this.version = version;
      return this;
    }

    /** The oldest stream version it still loads (default: {@link #version}). */
    public Builder<T> minimumVersion(int minimumVersion) {
      if (minimumVersion < 0) {
        throw new IllegalArgumentException("minimumVersion must be >= 0: " + minimumVersion);
      }
      this.minimumVersion = minimumVersion;
      return this;
    }

    /** Higher priorities are saved and loaded first (QEMU's MigrationPriority; default 0). */
    public Builder<T> priority(int priority) {
      this.priority = priority;
      return this;
    }

    /** Runs before the fields are written (e.g. to fold live state into fields). */
    public Builder<T> preSave(Consumer<T> hook) {
      this.preSave = Objects.requireNonNull(hook);
      return this;
    }

    /** Runs after the body was written, also when writing failed. */
    public Builder<T> postSave(Consumer<T> hook) {
      this.postSave = Objects.requireNonNull(hook);
      return this;
    }

    /** Runs before the fields are read (set the defaults a missing subsection should leave). */
    public Builder<T> preLoad(Consumer<T> hook) {
      this.preLoad = Objects.requireNonNull(hook);
      return this;
    }

    /**
     * Runs after fields and subsections were read, with the stream's version; a RuntimeException
     * it throws fails the load.
     */
    public Builder<T> postLoad(ObjIntConsumer<T> hook) {
      this.postLoad = Objects.requireNonNull(hook);
      return this;
    }

    /** Decides whether the object is sent (subsections; top-level sections are omitted). */
    public Builder<T> needed(Predicate<T> test) {
      this.needed = Objects.requireNonNull(test);
      return this;
    }

    private Builder<T> add(FieldKind<T> kind) {
      if (kind.name.isEmpty()) {
        throw new IllegalArgumentException("field name must not be empty");
      }
      kinds.add(kind);
      since.add(0);
      exists.add(null);
      return this;
    }

    private int last() {
      if (kinds.isEmpty()) {
        throw new IllegalStateException("since/existsIf must follow a field");
      }
      return kinds.size() - 1;
    }

    /** The field added last is present from stream version {@code version} on (QEMU field version_id). */
    public Builder<T> since(int version) {
      int i = last();
      if (exists.get(i) != null) {
        throw new IllegalStateException("field '" + kinds.get(i).name + "' has an exists-test already");
      }
      if (version < 0) {
        throw new IllegalArgumentException("since must be >= 0: " + version);
      }
      since.set(i, version);
      return this;
    }

    /**
     * The field added last is present when {@code test(object, streamVersion)} holds (QEMU {@code
     * _TEST}); on load it sees the fields read so far.
     */
    public Builder<T> existsIf(BiPredicate<T, Integer> test) {
      int i = last();
      if (since.get(i) != 0) {
        throw new IllegalStateException("field '" + kinds.get(i).name + "' has a since-version already");
      }
      exists.set(i, Objects.requireNonNull(test));
      return this;
    }

    // ----- integers ------------------------------------------------------------------------------

    private Builder<T> integer(String n, IntKind k, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return add(new IntField<>(n, k, k.typeName, IntMode.PLAIN, Objects.requireNonNull(get),
          Objects.requireNonNull(set)));
    }

    /** A signed 8-bit integer field. */
    public Builder<T> int8(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.INT8, get, set);
    }

    /** Saved values must lie in 0..255; loaded values arrive as 0..255. */
    public Builder<T> uint8(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.UINT8, get, set);
    }

    /** A signed 16-bit integer field. */
    public Builder<T> int16(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.INT16, get, set);
    }

    /** A unsigned 16-bit integer field. */
    public Builder<T> uint16(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.UINT16, get, set);
    }

    /** A signed 32-bit integer field. */
    public Builder<T> int32(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.INT32, get, set);
    }

    /** Saved values must lie in 0..2^32-1 (pass {@code Integer.toUnsignedLong(x)} for an int). */
    public Builder<T> uint32(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.UINT32, get, set);
    }

    /** A signed 64-bit integer field. */
    public Builder<T> int64(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.INT64, get, set);
    }

    /** The 64 bits of a Java long, read and written as unsigned. */
    public Builder<T> uint64(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return integer(name, IntKind.UINT64, get, set);
    }

    /** A timer's expiry in ns on its clock; -1 means not armed (QEMU {@code timer}). */
    public Builder<T> timer(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return add(new IntField<>(name, IntKind.INT64, "timer", IntMode.PLAIN,
          Objects.requireNonNull(get), Objects.requireNonNull(set)));
    }

    private Builder<T> equal(String n, IntKind k, String type, ToLongFunction<T> get) {
      return add(new IntField<>(n, k, type, IntMode.EQUAL, Objects.requireNonNull(get), null));
    }

    /** Written as uint8; the load fails unless the stream value equals {@code get}'s. */
    public Builder<T> uint8Equal(String name, ToLongFunction<T> get) {
      return equal(name, IntKind.UINT8, "uint8 equal", get);
    }

    /** A unsigned 16-bit integer that a load checks equals the current value (QEMU's {@code VMSTATE_*_EQUAL}). */
    public Builder<T> uint16Equal(String name, ToLongFunction<T> get) {
      return equal(name, IntKind.UINT16, "uint16 equal", get);
    }

    /** A unsigned 32-bit integer that a load checks equals the current value (QEMU's {@code VMSTATE_*_EQUAL}). */
    public Builder<T> uint32Equal(String name, ToLongFunction<T> get) {
      return equal(name, IntKind.UINT32, "uint32 equal", get);
    }

    /** A signed 32-bit integer that a load checks equals the current value (QEMU's {@code VMSTATE_*_EQUAL}). */
    public Builder<T> int32Equal(String name, ToLongFunction<T> get) {
      return equal(name, IntKind.INT32, "int32 equal", get);
    }

    /** A uint64 that must match; QEMU names this type {@code "int64 equal"} in the vmdesc. */
    public Builder<T> uint64Equal(String name, ToLongFunction<T> get) {
      return equal(name, IntKind.UINT64, "int64 equal", get);
    }

    /** An int32 whose loaded value must lie in 0..local value, then is stored (QEMU {@code int32 le}). */
    public Builder<T> int32Le(String name, ToLongFunction<T> get, ObjLongConsumer<T> set) {
      return add(new IntField<>(name, IntKind.INT32, "int32 le", IntMode.LE,
          Objects.requireNonNull(get), Objects.requireNonNull(set)));
    }

    // ----- bool, float ---------------------------------------------------------------------------

    /** One byte 0/1; any non-zero byte loads as true. */
    public Builder<T> bool(String name, Predicate<T> get, ObjBooleanConsumer<T> set) {
      return add(new BoolField<>(name, Objects.requireNonNull(get), Objects.requireNonNull(set)));
    }

    /** IEEE-754 bits as be64 (QEMU {@code float64}). */
    public Builder<T> float64(String name, ToDoubleFunction<T> get, ObjDoubleConsumer<T> set) {
      return add(new Float64Field<>(name, Objects.requireNonNull(get), Objects.requireNonNull(set)));
    }

    // ----- fixed integer arrays (loaded in place) ------------------------------------------------

    @SuppressWarnings("unchecked")
    private Builder<T> fixedArray(String n, IntKind k, int count, Function<T, ?> get) {
      if (count < 0) {
        throw new IllegalArgumentException("count must be >= 0: " + count);
      }
      return add(new IntArrayField<>(n, k, count, null,
          (Function<T, Object>) Objects.requireNonNull(get), null));
    }

    /** A fixed array of {@code count} signed 8-bit integers. */
    public Builder<T> int8Array(String name, int count, Function<T, byte[]> get) {
      return fixedArray(name, IntKind.INT8, count, get);
    }

    /** Raw bytes; element type {@code uint8} in the vmdesc. */
    public Builder<T> uint8Array(String name, int count, Function<T, byte[]> get) {
      return fixedArray(name, IntKind.UINT8, count, get);
    }

    /** A fixed array of {@code count} signed 16-bit integers. */
    public Builder<T> int16Array(String name, int count, Function<T, short[]> get) {
      return fixedArray(name, IntKind.INT16, count, get);
    }

    /** A fixed array of {@code count} unsigned 16-bit integers. */
    public Builder<T> uint16Array(String name, int count, Function<T, short[]> get) {
      return fixedArray(name, IntKind.UINT16, count, get);
    }

    /** A fixed array of {@code count} signed 32-bit integers. */
    public Builder<T> int32Array(String name, int count, Function<T, int[]> get) {
      return fixedArray(name, IntKind.INT32, count, get);
    }

    /** A fixed array of {@code count} unsigned 32-bit integers. */
    public Builder<T> uint32Array(String name, int count, Function<T, int[]> get) {
      return fixedArray(name, IntKind.UINT32, count, get);
    }

    /** A fixed array of {@code count} signed 64-bit integers. */
    public Builder<T> int64Array(String name, int count, Function<T, long[]> get) {
      return fixedArray(name, IntKind.INT64, count, get);
    }

    /** A fixed array of {@code count} unsigned 64-bit integers. */
    public Builder<T> uint64Array(String name, int count, Function<T, long[]> get) {
      return fixedArray(name, IntKind.UINT64, count, get);
    }

    // ----- variable integer arrays (count in an earlier field; reallocated on load) -------------

    private CountRef<T> countRef(String countField, int max) {
      if (max < 0) {
        throw new IllegalArgumentException("maximum must be >= 0: " + max);
      }
      for (FieldKind<T> k : kinds) {
        if (k.name.equals(countField)) {
          if (k instanceof IntField<T> f && f.mode != IntMode.LE
              && f.kind != IntKind.INT64 && f.kind != IntKind.UINT64
              && f.kind != IntKind.INT8 && f.kind != IntKind.INT16) {
            return new CountRef<>(countField, f.getter, max);
          }
          throw new IllegalArgumentException(
              "count/size field '" + countField + "' must be uint8, uint16, int32 or uint32");
        }
      }
      throw new IllegalArgumentException(
          "count/size field '" + countField + "' must be declared earlier in '" + name + "'");
    }

    @SuppressWarnings("unchecked")
    private Builder<T> varArray(String n, IntKind k, String countField, int max, Function<T, ?> get,
        BiConsumer<T, ?> set) {
      return add(new IntArrayField<>(n, k, -1, countRef(countField, max),
          (Function<T, Object>) Objects.requireNonNull(get),
          (BiConsumer<T, Object>) Objects.requireNonNull(set)));
    }

    /** A variable array of signed 8-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> int8VarArray(String name, String countField, int maxCount,
        Function<T, byte[]> get, BiConsumer<T, byte[]> set) {
      return varArray(name, IntKind.INT8, countField, maxCount, get, set);
    }

    /** A variable array of unsigned 8-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> uint8VarArray(String name, String countField, int maxCount,
        Function<T, byte[]> get, BiConsumer<T, byte[]> set) {
      return varArray(name, IntKind.UINT8, countField, maxCount, get, set);
    }

    /** A variable array of signed 16-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> int16VarArray(String name, String countField, int maxCount,
        Function<T, short[]> get, BiConsumer<T, short[]> set) {
      return varArray(name, IntKind.INT16, countField, maxCount, get, set);
    }

    /** A variable array of unsigned 16-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> uint16VarArray(String name, String countField, int maxCount,
        Function<T, short[]> get, BiConsumer<T, short[]> set) {
      return varArray(name, IntKind.UINT16, countField, maxCount, get, set);
    }

    /** A variable array of signed 32-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> int32VarArray(String name, String countField, int maxCount,
        Function<T, int[]> get, BiConsumer<T, int[]> set) {
      return varArray(name, IntKind.INT32, countField, maxCount, get, set);
    }

    /** A variable array of unsigned 32-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> uint32VarArray(String name, String countField, int maxCount,
        Function<T, int[]> get, BiConsumer<T, int[]> set) {
      return varArray(name, IntKind.UINT32, countField, maxCount, get, set);
    }

    /** A variable array of signed 64-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> int64VarArray(String name, String countField, int maxCount,
        Function<T, long[]> get, BiConsumer<T, long[]> set) {
      return varArray(name, IntKind.INT64, countField, maxCount, get, set);
    }

    /** A variable array of unsigned 64-bit integers whose count is the earlier integer field {@code countField} (at most {@code maxCount}; reallocated on load). */
    public Builder<T> uint64VarArray(String name, String countField, int maxCount,
        Function<T, long[]> get, BiConsumer<T, long[]> set) {
      return varArray(name, IntKind.UINT64, countField, maxCount, get, set);
    }

    // ----- buffers, padding -----------------------------------------------------------------------

    /** {@code sizeBytes} raw bytes of the array (loaded in place; the array must be that long). */
    public Builder<T> buffer(String name, int sizeBytes, Function<T, byte[]> get) {
      if (sizeBytes < 0) {
        throw new IllegalArgumentException("size must be >= 0: " + sizeBytes);
      }
      return add(new BufferField<>(name, sizeBytes, null, Objects.requireNonNull(get), null));
    }

    /**
     * Raw bytes whose length is the value of the earlier integer field {@code sizeField} (QEMU
     * VBUFFER); on load the length is bounded by {@code maxSizeBytes} and the array reallocated.
     */
    public Builder<T> vbuffer(String name, String sizeField, int maxSizeBytes,
        Function<T, byte[]> get, BiConsumer<T, byte[]> set) {
      return add(new BufferField<>(name, -1, countRef(sizeField, maxSizeBytes),
          Objects.requireNonNull(get), Objects.requireNonNull(set)));
    }

    /** {@code sizeBytes} zero bytes on save, skipped on load; named {@code unused}. */
    public Builder<T> unused(int sizeBytes) {
      if (sizeBytes <= 0) {
        throw new IllegalArgumentException("size must be > 0: " + sizeBytes);
      }
      return add(new UnusedField<>(sizeBytes));
    }

    // ----- structs ------------------------------------------------------------------------------

    /** A nested object saved with its own description at that description's version. */
    public <S> Builder<T> struct(String name, VMStateDescription<S> vmsd, Function<T, S> get) {
      return add(new StructField<>(name, Objects.requireNonNull(vmsd), Objects.requireNonNull(get)));
    }

    /** {@code count} nested objects, loaded in place into the first elements of the list. */
    public <S> Builder<T> structArray(String name, int count, VMStateDescription<S> vmsd,
        Function<T, List<S>> get) {
      if (count < 0) {
        throw new IllegalArgumentException("count must be >= 0: " + count);
      }
      return add(new StructArrayField<>(name, Objects.requireNonNull(vmsd), count, null,
          Objects.requireNonNull(get), null));
    }

    /**
     * Nested objects counted by the earlier field {@code countField}; on load the (mutable) list is
     * trimmed or extended with {@code factory} to the bounded count, and existing elements are
     * loaded in place.
     */
    public <S> Builder<T> structVarArray(String name, String countField, int maxCount,
        VMStateDescription<S> vmsd, Function<T, List<S>> get, Supplier<S> factory) {
      return add(new StructArrayField<>(name, Objects.requireNonNull(vmsd), -1,
          countRef(countField, maxCount), Objects.requireNonNull(get),
          Objects.requireNonNull(factory)));
    }

    // ----- subsections --------------------------------------------------------------------------

    /**
     * A subsection saving the object {@code get} returns; sent when {@code sub}'s {@code needed}
     * holds. Its name must start with this description's name (QEMU finds subsections by prefix).
     */
    public <S> Builder<T> subsection(VMStateDescription<S> sub, Function<T, S> get) {
      Objects.requireNonNull(sub);
      Objects.requireNonNull(get);
      if (!sub.name().startsWith(name) || sub.name().length() <= name.length()) {
        throw new IllegalArgumentException(
            "subsection '" + sub.name() + "' must be named '" + name + "/...'");
      }
      if (sub.version() > 255) {
        throw new IllegalArgumentException(
            "subsection '" + sub.name() + "' version above 255 (QEMU 7.2 keeps 8 bits)");
      }
      for (Subsection<T, ?> s : subsections) {
        if (s.vmsd().name().equals(sub.name())) {
          throw new IllegalArgumentException("duplicate subsection '" + sub.name() + "'");
        }
      }
      subsections.add(new Subsection<>(sub, get));
      return this;
    }

    /** A subsection over the same object. */
    public Builder<T> subsection(VMStateDescription<T> sub) {
      return subsection(sub, Function.identity());
    }

    /** The immutable description; checks the fields (count references, names). */
    public VMStateDescription<T> build() {
      int min = minimumVersion < 0 ? version : minimumVersion;
      if (min > version) {
        throw new IllegalArgumentException(
            "'" + name + "': minimumVersion " + min + " > version " + version);
      }
      Map<String, Integer> occurrences = new HashMap<>();
      for (FieldKind<T> k : kinds) {
        occurrences.merge(k.name, 1, Integer::sum);
      }
      Map<String, Integer> seen = new HashMap<>();
      List<Slot<T>> slots = new ArrayList<>(kinds.size());
      for (int i = 0; i < kinds.size(); i++) {
        FieldKind<T> k = kinds.get(i);
        if (since.get(i) > version) {
          throw new IllegalArgumentException("'" + name + "': field '" + k.name + "' since "
              + since.get(i) + " > version " + version);
        }
        String descName = k.name;
        if (occurrences.get(k.name) > 1) {
          int nth = seen.merge(k.name, 1, Integer::sum) - 1;
          descName = k.name + "[" + nth + "]";
        }
        BiPredicate<T, Integer> test = exists.get(i);
        VMStateDescription<?> nested = k.struct();
        boolean compressible = test == null && (nested == null || nested.compressibleAsStruct());
        slots.add(new Slot<>(k, since.get(i), test, descName, compressible));
      }
      return new VMStateDescription<>(this, slots);
    }
  }
}
