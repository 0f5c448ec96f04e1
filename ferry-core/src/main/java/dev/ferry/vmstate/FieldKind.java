package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import java.io.IOException;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.ObjDoubleConsumer;
import java.util.function.ObjLongConsumer;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * What one declared field is and how its elements move (QEMU's VMStateField plus its VMStateInfo).
 * Immutable; the accessors are the device's lambdas. The writer and reader in this package decide
 * whether a field is present (since / exists-if) and produce the vmdesc around the elements.
 */
abstract class FieldKind<T> {
  final String name;

  FieldKind(String name) {
    this.name = name;
  }

  /** The vmdesc {@code type} of each element. */
  abstract String type();

  /** Elements this field writes for {@code obj}; throws IllegalStateException when inconsistent. */
  abstract int saveCount(T obj);

  /** Writes elements [from, to) without description. */
  abstract void save(MigrationOutput out, T obj, int from, int to) throws IOException;

  /** Writes struct element {@code i}, describing it into the open {@code "struct"} object. */
  void saveDescribed(MigrationOutput out, T obj, int i, QemuJsonWriter desc) throws IOException {
    save(out, obj, i, i + 1);
  }

  /** The element count to read, checked against the declared bound; (re)allocates storage. */
  abstract int prepareLoad(MigrationInput in, T obj) throws IOException;

  /** Reads {@code n} elements (as returned by {@link #prepareLoad}). */
  abstract void load(MigrationInput in, T obj, int n) throws IOException;

  /** True for array kinds (element errors name {@code field[i]}). */
  boolean isArray() {
    return false;
  }

  /** The nested description of struct kinds, else null. */
  VMStateDescription<?> struct() {
    return null;
  }

  /** Static size of one element in bytes for the dump (0 when only known at run time). */
  abstract int elementSizeBytes();

  /** Adds the element index to an error from element {@code i}. */
  static MigrationStreamException atIndex(MigrationStreamException e, int i) {
    return e.inField("[" + i + "]");
  }

  /** A declared bound on a count or size that lives in an earlier integer field. */
  record CountRef<T>(String fieldName, ToLongFunction<T> getter, int max) {
    long get(T obj) {
      return getter.applyAsLong(obj);
    }

    int checkedForLoad(MigrationInput in, String what, T obj) throws MigrationStreamException {
      long c = get(obj);
      if (c < 0 || c > max) {
        throw in.corrupt(
            what + " " + c + " (from field '" + fieldName + "') outside 0.." + max);
      }
      return (int) c;
    }

    int checkedForSave(String what, T obj, String owner) {
      long c = get(obj);
      if (c < 0 || c > max) {
        throw new IllegalStateException(
            "field '" + owner + "': " + what + " " + c + " (from field '" + fieldName
                + "') outside 0.." + max);
      }
      return (int) c;
    }
  }

  // ---------------------------------------------------------------------------------------------

  enum IntMode {
    PLAIN,
    EQUAL,
    LE
  }

  /** A scalar integer, timer, "equal" or "le" field. */
  static final class IntField<T> extends FieldKind<T> {
    final IntKind kind;
    final String type;
    final IntMode mode;
    final ToLongFunction<T> getter;
    final ObjLongConsumer<T> setter;

    IntField(String name, IntKind kind, String type, IntMode mode, ToLongFunction<T> getter,
        ObjLongConsumer<T> setter) {
      super(name);
      this.kind = kind;
      this.type = type;
      this.mode = mode;
      this.getter = getter;
      this.setter = setter;
    }

    @Override
    String type() {
      return type;
    }

    @Override
    int saveCount(T obj) {
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      long v = getter.applyAsLong(obj);
      if (!kind.fits(v)) {
        throw new IllegalStateException(
            "field '" + name + "': value " + v + " out of range for " + kind.typeName + " ("
                + kind.min + ".." + kind.max + ")");
      }
      kind.write(out, v);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) {
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      long v = kind.read(in);
      switch (mode) {
        case PLAIN -> setter.accept(obj, v);
        case EQUAL -> {
          long local = getter.applyAsLong(obj);
          if (kind == IntKind.UINT32 || kind == IntKind.UINT16 || kind == IntKind.UINT8) {
            local &= kind.max;
          }
          if (v != local) {
            throw in.corrupt(type + " mismatch: stream has " + v + ", this side has " + local);
          }
        }
        case LE -> {
          long local = getter.applyAsLong(obj);
          if (v < 0 || v > local) {
            throw in.corrupt(type + " check failed: stream has " + v + ", allowed 0.." + local);
          }
          setter.accept(obj, v);
        }
      }
    }

    @Override
    int elementSizeBytes() {
      return kind.widthBytes;
    }
  }

  static final class BoolField<T> extends FieldKind<T> {
    final Predicate<T> getter;
    final ObjBooleanConsumer<T> setter;

    BoolField(String name, Predicate<T> getter, ObjBooleanConsumer<T> setter) {
      super(name);
      this.getter = getter;
      this.setter = setter;
    }

    @Override
    String type() {
      return "bool";
    }

    @Override
    int saveCount(T obj) {
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      out.writeU8(getter.test(obj) ? 1 : 0);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) {
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      setter.accept(obj, in.readU8() != 0); // any non-zero byte is true, as in QEMU
    }

    @Override
    int elementSizeBytes() {
      return 1;
    }
  }

  static final class Float64Field<T> extends FieldKind<T> {
    final ToDoubleFunction<T> getter;
    final ObjDoubleConsumer<T> setter;

    Float64Field(String name, ToDoubleFunction<T> getter, ObjDoubleConsumer<T> setter) {
      super(name);
      this.getter = getter;
      this.setter = setter;
    }

    @Override
    String type() {
      return "float64";
    }

    @Override
    int saveCount(T obj) {
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      out.writeBe64(Double.doubleToRawLongBits(getter.applyAsDouble(obj)));
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) {
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      setter.accept(obj, Double.longBitsToDouble(in.readBe64()));
    }

    @Override
    int elementSizeBytes() {
      return 8;
    }
  }

  /** Fixed ({@code count} null) or variable integer arrays backed by byte/short/int/long[]. */
  static final class IntArrayField<T> extends FieldKind<T> {
    final IntKind kind;
    final int fixedCount;
    final CountRef<T> count;
    final Function<T, Object> getter;
    final BiConsumer<T, Object> setter;

    IntArrayField(String name, IntKind kind, int fixedCount, CountRef<T> count,
        Function<T, Object> getter, BiConsumer<T, Object> setter) {
      super(name);
      this.kind = kind;
      this.fixedCount = fixedCount;
      this.count = count;
      this.getter = getter;
      this.setter = setter;
    }

    @Override
    String type() {
      return kind.typeName;
    }

    @Override
    boolean isArray() {
      return true;
    }

    private Object array(T obj) {
      Object a = getter.apply(obj);
      if (a == null) {
        throw new IllegalStateException("field '" + name + "': array is null");
      }
      return a;
    }

    @Override
    int saveCount(T obj) {
      int n = count == null ? fixedCount : count.checkedForSave("count", obj, name);
      if (n == 0) {
        return 0;
      }
      int len = IntKind.length(array(obj));
      if (len < n) {
        throw new IllegalStateException(
            "field '" + name + "': array holds " + len + " elements, count is " + n);
      }
      return n;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      kind.writeArray(out, array(obj), from, to);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) throws IOException {
      if (count == null) {
        int len = IntKind.length(array(obj));
        if (len < fixedCount) {
          throw new IllegalStateException(
              "field '" + name + "': array holds " + len + " elements, needs " + fixedCount);
        }
        return fixedCount;
      }
      int n = count.checkedForLoad(in, "count", obj);
      Object a = getter.apply(obj);
      if (a == null || IntKind.length(a) != n) {
        setter.accept(obj, kind.newArray(n));
      }
      return n;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      Object a = array(obj);
      if (a instanceof byte[] b) {
        in.readFully(b, 0, n);
        return;
      }
      for (int i = 0; i < n; i++) {
        try {
          kind.readElement(in, a, i);
        } catch (MigrationStreamException e) {
          throw atIndex(e, i);
        }
      }
    }

    @Override
    int elementSizeBytes() {
      return kind.widthBytes;
    }
  }

  /** A byte buffer of fixed size or with its size in an earlier integer field (QEMU VBUFFER). */
  static final class BufferField<T> extends FieldKind<T> {
    final int fixedSize;
    final CountRef<T> size;
    final Function<T, byte[]> getter;
    final BiConsumer<T, byte[]> setter;

    BufferField(String name, int fixedSize, CountRef<T> size, Function<T, byte[]> getter,
        BiConsumer<T, byte[]> setter) {
      super(name);
      this.fixedSize = fixedSize;
      this.size = size;
      this.getter = getter;
      this.setter = setter;
    }

    @Override
    String type() {
      return "buffer";
    }

    private int saveSize(T obj) {
      return size == null ? fixedSize : size.checkedForSave("size", obj, name);
    }

    @Override
    int saveCount(T obj) {
      int n = saveSize(obj);
      byte[] b = getter.apply(obj);
      int len = b == null ? 0 : b.length;
      if (len < n) {
        throw new IllegalStateException(
            "field '" + name + "': buffer holds " + len + " bytes, size is " + n);
      }
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      int n = saveSize(obj);
      if (n > 0) {
        out.writeBytes(getter.apply(obj), 0, n);
      }
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) throws IOException {
      if (size == null) {
        byte[] b = getter.apply(obj);
        if (b == null || b.length < fixedSize) {
          throw new IllegalStateException(
              "field '" + name + "': buffer must hold " + fixedSize + " bytes before loading");
        }
        return 1;
      }
      int n = size.checkedForLoad(in, "size", obj);
      byte[] b = getter.apply(obj);
      if (b == null || b.length != n) {
        setter.accept(obj, new byte[n]);
      }
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      byte[] b = getter.apply(obj);
      int len = size == null ? fixedSize : b.length;
      in.readFully(b, 0, len);
    }

    @Override
    int elementSizeBytes() {
      return size == null ? fixedSize : 0;
    }
  }

  /** Padding: zeros on save, skipped on load. */
  static final class UnusedField<T> extends FieldKind<T> {
    final int sizeBytes;

    UnusedField(int sizeBytes) {
      super("unused");
      this.sizeBytes = sizeBytes;
    }

    @Override
    String type() {
      return "unused_buffer";
    }

    @Override
    int saveCount(T obj) {
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      out.writeZeros(sizeBytes);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) {
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      in.skip(sizeBytes);
    }

    @Override
    int elementSizeBytes() {
      return sizeBytes;
    }
  }

  /** One nested struct, saved and loaded at the nested description's own version. */
  static final class StructField<T, S> extends FieldKind<T> {
    final VMStateDescription<S> vmsd;
    final Function<T, S> getter;

    StructField(String name, VMStateDescription<S> vmsd, Function<T, S> getter) {
      super(name);
      this.vmsd = vmsd;
      this.getter = getter;
    }

    private S target(T obj) {
      S s = getter.apply(obj);
      if (s == null) {
        throw new IllegalStateException("field '" + name + "': struct is null");
      }
      return s;
    }

    @Override
    String type() {
      return "struct";
    }

    @Override
    VMStateDescription<?> struct() {
      return vmsd;
    }

    @Override
    int saveCount(T obj) {
      target(obj);
      return 1;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      VMStateWriter.save(vmsd, out, target(obj), null);
    }

    @Override
    void saveDescribed(MigrationOutput out, T obj, int i, QemuJsonWriter desc) throws IOException {
      VMStateWriter.save(vmsd, out, target(obj), desc);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) {
      return 1;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      VMStateReader.load(vmsd, in, target(obj), vmsd.version());
    }

    @Override
    int elementSizeBytes() {
      return vmsd.fixedBodySizeBytes();
    }
  }

  /** Fixed or variable arrays of structs, backed by a mutable {@code List<S>}. */
  static final class StructArrayField<T, S> extends FieldKind<T> {
    final VMStateDescription<S> vmsd;
    final int fixedCount;
    final CountRef<T> count;
    final Function<T, List<S>> getter;
    final Supplier<S> factory;

    StructArrayField(String name, VMStateDescription<S> vmsd, int fixedCount, CountRef<T> count,
        Function<T, List<S>> getter, Supplier<S> factory) {
      super(name);
      this.vmsd = vmsd;
      this.fixedCount = fixedCount;
      this.count = count;
      this.getter = getter;
      this.factory = factory;
    }

    private List<S> list(T obj) {
      List<S> l = getter.apply(obj);
      if (l == null) {
        throw new IllegalStateException("field '" + name + "': list is null");
      }
      return l;
    }

    private S element(List<S> l, int i) {
      S s = l.get(i);
      if (s == null) {
        throw new IllegalStateException("field '" + name + "': element " + i + " is null");
      }
      return s;
    }

    @Override
    String type() {
      return "struct";
    }

    @Override
    boolean isArray() {
      return true;
    }

    @Override
    VMStateDescription<?> struct() {
      return vmsd;
    }

    @Override
    int saveCount(T obj) {
      int n = count == null ? fixedCount : count.checkedForSave("count", obj, name);
      if (n > 0 && list(obj).size() < n) {
        throw new IllegalStateException(
            "field '" + name + "': list holds " + list(obj).size() + " elements, count is " + n);
      }
      return n;
    }

    @Override
    void save(MigrationOutput out, T obj, int from, int to) throws IOException {
      List<S> l = list(obj);
      for (int i = from; i < to; i++) {
        VMStateWriter.save(vmsd, out, element(l, i), null);
      }
    }

    @Override
    void saveDescribed(MigrationOutput out, T obj, int i, QemuJsonWriter desc) throws IOException {
      VMStateWriter.save(vmsd, out, element(list(obj), i), desc);
    }

    @Override
    int prepareLoad(MigrationInput in, T obj) throws IOException {
      List<S> l = list(obj);
      if (count == null) {
        if (l.size() < fixedCount) {
          throw new IllegalStateException(
              "field '" + name + "': list holds " + l.size() + " elements, needs " + fixedCount);
        }
        return fixedCount;
      }
      int n = count.checkedForLoad(in, "count", obj);
      while (l.size() > n) {
        l.removeLast();
      }
      while (l.size() < n) {
        l.add(factory.get());
      }
      return n;
    }

    @Override
    void load(MigrationInput in, T obj, int n) throws IOException {
      List<S> l = list(obj);
      for (int i = 0; i < n; i++) {
        try {
          VMStateReader.load(vmsd, in, element(l, i), vmsd.version());
        } catch (MigrationStreamException e) {
          throw atIndex(e, i);
        }
      }
    }

    @Override
    int elementSizeBytes() {
      return vmsd.fixedBodySizeBytes();
    }
  }
}
