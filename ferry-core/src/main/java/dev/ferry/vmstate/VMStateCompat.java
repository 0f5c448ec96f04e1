package dev.ferry.vmstate;

import dev.ferry.vmstate.VMStateDump.Description;
import dev.ferry.vmstate.VMStateDump.Field;
import dev.ferry.vmstate.VMStateDump.Section;
import java.util.ArrayList;
import java.util.List;

/**
 * Whether a destination build can load what a source build sends, judged from their dumps by the
 * rules of QEMU's {@code vmstate-static-checker.py}: same machine; every source section exists on
 * the destination, whose version range includes the source version; fields match in order by
 * name and size (runs of padding compare by total size; extra destination fields are fine only
 * when they are newer than the source version or exists-tested); every source subsection exists.
 */
public final class VMStateCompat {
  private VMStateCompat() {}

  /** Human-readable problems, empty when compatible. */
  public static List<String> check(VMStateDump source, VMStateDump dest) {
    List<String> problems = new ArrayList<>();
    if (!source.machine().equals(dest.machine())) {
      problems.add("machine type differs: source '" + source.machine() + "', dest '"
          + dest.machine() + "'");
    }
    for (Section s : source.sections()) {
      Section d = dest.section(s.name());
      if (d == null) {
        problems.add("section '" + s.name() + "' does not exist on the destination");
        continue;
      }
      if (s.versionId() > d.versionId()) {
        problems.add("section '" + s.name() + "': source version " + s.versionId()
            + " is newer than the destination's " + d.versionId());
      } else if (s.versionId() < d.minimumVersionId()) {
        problems.add("section '" + s.name() + "': source version " + s.versionId()
            + " is older than the destination's minimum " + d.minimumVersionId());
      }
      compare(s.name(), s.description(), d.description(), problems);
    }
    return problems;
  }

  private static void compare(String path, Description s, Description d, List<String> problems) {
    if (!s.name().equals(d.name())) {
      problems.add(path + ": description name differs: source '" + s.name() + "', dest '"
          + d.name() + "'");
      return;
    }
    List<Field> sf = collapseUnused(s.fields());
    List<Field> df = collapseUnused(d.fields());
    int n = Math.min(sf.size(), df.size());
    for (int i = 0; i < n; i++) {
      Field a = sf.get(i);
      Field b = df.get(i);
      String where = path + ": field '" + a.field() + "'";
      if (!a.field().equals(b.field())) {
        problems.add(where + " at position " + i + " is '" + b.field() + "' on the destination");
        return; // the remaining fields no longer line up
      }
      if (a.sizeBytes() != b.sizeBytes()) {
        problems.add(where + ": size " + a.sizeBytes() + " on the source, " + b.sizeBytes()
            + " on the destination");
      }
      if (a.description() != null && b.description() != null) {
        compare(path + "/" + a.field(), a.description(), b.description(), problems);
      } else if (a.description() != null || b.description() != null) {
        problems.add(where + ": a struct on one side only");
      }
    }
    for (int i = n; i < sf.size(); i++) {
      problems.add(path + ": field '" + sf.get(i).field() + "' does not exist on the destination");
    }
    for (int i = n; i < df.size(); i++) {
      Field b = df.get(i);
      if (!b.fieldExists() && b.versionId() <= s.versionId()) {
        problems.add(path + ": destination expects field '" + b.field()
            + "' that the source (version " + s.versionId() + ") does not send");
      }
    }
    for (Description sub : s.subsections()) {
      Description match = null;
      for (Description ds : d.subsections()) {
        if (ds.name().equals(sub.name())) {
          match = ds;
        }
      }
      if (match == null) {
        problems.add(path + ": subsection '" + sub.name() + "' does not exist on the destination");
      } else {
        if (sub.versionId() > match.versionId() || sub.versionId() < match.minimumVersionId()) {
          problems.add(path + ": subsection '" + sub.name() + "' version " + sub.versionId()
              + " outside the destination's " + match.minimumVersionId() + ".."
              + match.versionId());
        }
        compare(path + "/" + sub.name(), sub, match, problems);
      }
    }
  }

  /** Merges each run of {@code unused} fields into one with the summed size. */
  private static List<Field> collapseUnused(List<Field> fields) {
    List<Field> out = new ArrayList<>(fields.size());
    for (Field f : fields) {
      if (f.field().equals("unused") && !out.isEmpty() && out.getLast().field().equals("unused")) {
        Field prev = out.removeLast();
        out.add(new Field("unused", prev.versionId(), prev.fieldExists(),
            prev.sizeBytes() + f.sizeBytes(), null));
      } else {
        out.add(f);
      }
    }
    return out;
  }
}
