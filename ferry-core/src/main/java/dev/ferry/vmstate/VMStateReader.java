package dev.ferry.vmstate;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.VersionMismatchException;
import java.io.IOException;

/**
 * Loads an object by its description (spec 6.5 and 6.6): version checks, {@code preLoad}, the
 * present fields, the subsection loop, then {@code postLoad(version)}. Every failure, including an
 * exception thrown by a device callback, leaves as a {@link MigrationStreamException} recorded as
 * the stream's sticky error, with the field path (outermost first) and the stream offset.
 */
final class VMStateReader {
  private VMStateReader() {}

  static <T> void load(VMStateDescription<T> d, MigrationInput in, T obj, int version)
      throws IOException {
    if (version > d.version() || version < d.minimumVersion()) {
      VersionMismatchException e =
          new VersionMismatchException(
              "vmstate '" + d.name() + "'", version, d.minimumVersion(), d.version());
      e.atOffset(in.position());
      throw (MigrationStreamException) in.fail(e);
    }
    if (d.preLoad != null) {
      try {
        d.preLoad.accept(obj);
      } catch (RuntimeException e) {
        throw rejected(in, "preLoad of '" + d.name() + "' version " + version, e);
      }
    }
    for (Slot<T> slot : d.slots) {
      FieldKind<T> kind = slot.kind();
      try {
        if (!slot.present(obj, version)) {
          continue;
        }
        int n = kind.prepareLoad(in, obj);
        kind.load(in, obj, n);
      } catch (MigrationStreamException e) {
        throw e.inField(kind.name);
      } catch (RuntimeException e) {
        throw rejected(in, "'" + d.name() + "' version " + version, e).inField(kind.name);
      }
    }
    loadSubsections(d, in, obj, version);
    if (d.postLoad != null) {
      try {
        d.postLoad.accept(obj, version);
      } catch (RuntimeException e) {
        throw rejected(in, "postLoad of '" + d.name() + "' version " + version, e);
      }
    }
  }

  private static MigrationStreamException rejected(MigrationInput in, String where,
      RuntimeException e) {
    MigrationStreamException m =
        new MigrationStreamException(
            "rejected by " + where + ": " + e, in.position(), e);
    in.fail(m);
    return m;
  }

  /** The subsection loop of spec 6.5, strict where QEMU is lax about truncation. */
  private static <T> void loadSubsections(VMStateDescription<T> d, MigrationInput in, T obj,
      int parentVersion) throws IOException {
    String parent = d.name();
    while (true) {
      if (in.peekU8(0) != VMStateWriter.SUBSECTION) {
        return;
      }
      int len = in.peekU8(1);
      if (len < parent.length() + 1) {
        return; // too short to be ours (or the stream ends): belongs to an outer level
      }
      // As QEMU: the name must be fully readable and carry the parent's name as prefix, else the
      // 0x05 is not a subsection of this level (an outer level, or the stream ends).
      StringBuilder name = new StringBuilder(len);
      for (int i = 0; i < len; i++) {
        int b = in.peekU8(2 + i);
        if (b < 0 || (i < parent.length() && b != parent.charAt(i))) {
          return;
        }
        name.append((char) b);
      }
      String subName = name.toString();
      Subsection<T, ?> sub = d.subsection(subName);
      if (sub == null) {
        throw in.corrupt(
            "unknown subsection '" + subName + "' in '" + parent + "' version " + parentVersion);
      }
      in.skip(2 + len);
      long version = in.readBe32Unsigned();
      try {
        loadSubsection(sub, in, obj, version);
      } catch (MigrationStreamException e) {
        throw e.inField(subName);
      } catch (RuntimeException e) {
        throw rejected(in, "subsection '" + subName + "'", e).inField(subName);
      }
    }
  }

  private static <T, S> void loadSubsection(Subsection<T, S> sub, MigrationInput in, T obj,
      long version) throws IOException {
    VMStateDescription<S> sd = sub.vmsd();
    if (version > sd.version()) {
      VersionMismatchException e =
          new VersionMismatchException("subsection '" + sd.name() + "'", version,
              sd.minimumVersion(), sd.version());
      e.atOffset(in.position());
      throw (MigrationStreamException) in.fail(e);
    }
    load(sd, in, sub.target(obj), (int) version);
  }
}
