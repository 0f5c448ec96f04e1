package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.stream.MigrationOutput;
import java.io.IOException;

/**
 * Saves an object by its description (spec 6.2) and, when given a writer, describes what went out
 * in QEMU 7.2's vmdesc shape (spec 7.3): one object per element written, compressed arrays
 * described by their first element, {@code size} measured as stream bytes.
 */
final class VMStateWriter {
  /** Subsection marker byte (QEMU_VM_SUBSECTION). */
  static final int SUBSECTION = 0x05;

  private VMStateWriter() {}

  /**
   * Writes {@code obj}'s body at the description's version. With {@code desc}, adds {@code
   * vmsd_name}, {@code version}, {@code fields} and (when any was sent) {@code subsections} to the
   * JSON object the caller has open.
   */
  static <T> void save(VMStateDescription<T> d, MigrationOutput out, T obj, QemuJsonWriter desc)
      throws IOException {
    int version = d.version();
    if (d.preSave != null) {
      d.preSave.accept(obj);
    }
    try {
      if (desc != null) {
        desc.name("vmsd_name").value(d.name()).name("version").value(version);
        desc.name("fields").beginArray();
      }
      for (Slot<T> slot : d.slots) {
        if (!slot.present(obj, version)) {
          continue;
        }
        FieldKind<T> kind = slot.kind();
        int n = kind.saveCount(obj);
        if (desc == null) {
          if (n > 0) {
            kind.save(out, obj, 0, n);
          }
          continue;
        }
        for (int i = 0; i < n; i++) {
          if (i > 0 && slot.compressible()) {
            kind.save(out, obj, i, n); // a compressed array is described by its first element
            break;
          }
          describeElement(out, obj, desc, slot, i, n);
        }
      }
      if (desc != null) {
        desc.endArray();
      }
      saveSubsections(d, out, obj, desc);
    } finally {
      if (d.postSave != null) {
        d.postSave.accept(obj);
      }
    }
  }

  private static <T> void describeElement(MigrationOutput out, T obj, QemuJsonWriter desc,
      Slot<T> slot, int i, int n) throws IOException {
    FieldKind<T> kind = slot.kind();
    desc.beginObject().name("name").value(slot.descName());
    if (n > 1) {
      if (slot.compressible()) {
        desc.name("array_len").value(n);
      } else {
        desc.name("index").value(i);
      }
    }
    desc.name("type").value(kind.type());
    long start = out.position();
    if (kind.struct() != null) {
      desc.name("struct").beginObject();
      kind.saveDescribed(out, obj, i, desc);
      desc.endObject();
    } else {
      kind.save(out, obj, i, i + 1);
    }
    desc.name("size").value(out.position() - start).endObject();
  }

  private static <T> void saveSubsections(VMStateDescription<T> d, MigrationOutput out, T obj,
      QemuJsonWriter desc) throws IOException {
    boolean any = false;
    for (Subsection<T, ?> sub : d.subsections) {
      any |= saveSubsection(sub, out, obj, desc, any);
    }
    if (any && desc != null) {
      desc.endArray();
    }
  }

  private static <T, S> boolean saveSubsection(Subsection<T, S> sub, MigrationOutput out, T obj,
      QemuJsonWriter desc, boolean opened) throws IOException {
    S target = sub.target(obj);
    VMStateDescription<S> sd = sub.vmsd();
    if (!sd.isNeeded(target)) {
      return false;
    }
    if (desc != null) {
      if (!opened) {
        desc.name("subsections").beginArray();
      }
      desc.beginObject();
    }
    out.writeU8(SUBSECTION);
    out.writeCountedString(sd.name());
    out.writeBe32(sd.version());
    save(sd, out, target, desc);
    if (desc != null) {
      desc.endObject();
    }
    return true;
  }
}
