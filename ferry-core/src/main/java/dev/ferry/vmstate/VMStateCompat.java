package dev.ferry.vmstate;

import dev.ferry.vmstate.VMStateDump.Description;
import dev.ferry.vmstate.VMStateDump.Field;
import dev.ferry.vmstate.VMStateDump.Section;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;

/**
 * Whether a destination build can load what a source build sends, judged from their dumps with
 * the rules of QEMU 7.2's {@code scripts/vmstate-static-checker.py}, so that both reach the same
 * verdict (and the same error count) on the same pair of dumps, QEMU's own {@code -dump-vmstate}
 * output included:
 *
 * <ul>
 *   <li>A differing machine type is a warning only: the check compares descriptions.
 *   <li>Every source section exists on the destination; a section, a description (nested ones and
 *       subsections too) and a field is an error when its source version is newer than the
 *       destination's; a description also when the source version is below the destination's
 *       minimum (QEMU checks the minimum of a description, not of the section entry around it).
 *   <li>A description's name matches; a source description with fields (subsections) needs the
 *       destination's to have fields (subsections).
 *   <li>Fields are walked in order, pairwise by name. A field that moved into a struct (the
 *       struct's first field has the name expected) or out of one is followed into the struct, as
 *       the wire format did not change. Runs of {@code unused} bytes compare by size against the
 *       fields on the other side. A name that differs otherwise ends the walk of that description
 *       (nothing after it lines up). Extra destination fields after the last source field are not
 *       checked.
 *   <li>A field's size is compared only when it is no struct: a struct's nested description is
 *       what counts, and it is checked recursively (its size is a host detail).
 *   <li>Every source subsection exists on the destination and is checked as a description.
 * </ul>
 *
 * <p>Not carried over: QEMU's table of sections and fields renamed in QEMU's own history (e.g.
 * {@code e1000-82540em}); Ferry's devices never had those names.
 */
public final class VMStateCompat {
  private VMStateCompat() {}

  /**
   * One finding of a comparison.
   *
   * @param error true when it makes the dumps incompatible; false for a warning
   * @param section the top-level section it is in, or null (the machine type)
   * @param message one line saying what and where
   */
  public record Finding(boolean error, String section, String message) {
    @Override
    public String toString() {
      return error ? message : "warning: " + message;
    }
  }

  /** The problems that make the dumps incompatible, one line each; empty when compatible. */
  public static List<String> check(VMStateDump source, VMStateDump dest) {
    return compare(source, dest).stream().filter(Finding::error).map(Finding::message).toList();
  }

  /** Every finding (errors and warnings) in the order the dumps are walked. */
  public static List<Finding> compare(VMStateDump source, VMStateDump dest) {
    Walk w = new Walk();
    if (!source.machine().equals(dest.machine())) {
      w.findings.add(new Finding(false, null, "checking different machine types: source '" + source.machine()
          + "', destination '" + dest.machine() + "'"));
    }
    for (Section s : source.sections()) {
      w.section = s.name();
      Section d = dest.section(s.name());
      if (d == null) {
        w.error("section '" + s.name() + "' does not exist on the destination");
        continue;
      }
      if (s.versionId() > d.versionId()) {
        w.error("section '" + s.name() + "': source version " + s.versionId()
            + " is newer than the destination's " + d.versionId());
      }
      w.description(s.description(), d.description());
    }
    return w.findings;
  }

  /** The state of one comparison: the findings so far and the section being walked. */
  private static final class Walk {
    final List<Finding> findings = new ArrayList<>();
    String section;

    void error(String message) {
      findings.add(new Finding(true, section, message));
    }

    String where(String desc) {
      return "section '" + section + "', description '" + desc + "'";
    }

    void description(Description s, Description d) {
      if (s.versionId() > d.versionId()) {
        error(where(s.name()) + ": source version " + s.versionId() + " is newer than the destination's "
            + d.versionId());
      }
      if (s.versionId() < d.minimumVersionId()) {
        error(where(s.name()) + ": source version " + s.versionId() + " is older than the destination's minimum "
            + d.minimumVersionId());
      }
      if (!s.name().equals(d.name())) {
        error(where(s.name()) + ": the destination has description '" + d.name() + "' instead");
        return;
      }
      if (!s.fields().isEmpty()) {
        if (d.fields().isEmpty()) {
          error(where(s.name()) + ": the destination has no fields");
        } else {
          fields(s.name(), s.fields(), d.fields());
        }
      }
      if (!s.subsections().isEmpty()) {
        if (d.subsections().isEmpty()) {
          error(where(s.name()) + ": the destination has no subsections (the source has "
              + String.join(", ", s.subsections().stream().map(Description::name).toList()) + ")");
        } else {
          subsections(s.name(), s.subsections(), d.subsections());
        }
      }
    }

    void subsections(String desc, List<Description> src, List<Description> dst) {
      for (Description s : src) {
        boolean found = false;
        for (Description d : dst) {
          if (d.name().equals(s.name())) {
            found = true;
            description(s, d);
          }
        }
        if (!found) {
          error(where(desc) + ": subsection '" + s.name() + "' does not exist on the destination");
        }
      }
    }

    /**
     * Walks both field lists in step. Entering a struct on one side pushes that side's cursor and
     * holds the other side's field for one round; a run of {@code unused} bytes on one side holds
     * that side while the other side's fields use the bytes up.
     */
    void fields(String desc, List<Field> srcFields, List<Field> dstFields) {
      Deque<Iterator<Field>> srcOuter = new ArrayDeque<>();
      Deque<Iterator<Field>> dstOuter = new ArrayDeque<>();
      Iterator<Field> src = srcFields.iterator();
      Iterator<Field> dst = dstFields.iterator();
      boolean advanceSrc = true;
      boolean advanceDst = true;
      long unusedLeft = 0;
      Field s = null;
      Field d = null;
      while (true) {
        if (advanceSrc) {
          if (!src.hasNext()) {
            if (srcOuter.isEmpty()) {
              return;
            }
            src = srcOuter.pop();
            continue;
          }
          s = src.next();
        } else if (unusedLeft == 0) {
          advanceSrc = true; // held for one round only
        }
        if (advanceDst) {
          if (!dst.hasNext()) {
            if (dstOuter.isEmpty()) {
              error(where(desc) + ": field '" + s.field() + "' does not exist on the destination (it has no further fields)");
              return;
            }
            dst = dstOuter.pop();
            advanceSrc = false;
            continue;
          }
          d = dst.next();
        } else if (unusedLeft == 0) {
          advanceDst = true;
        }
        if (unusedLeft != 0 && (!advanceDst || !advanceSrc)) {
          // the side that moves uses up the held side's unused bytes
          Field user = !advanceDst ? s : d;
          unusedLeft -= user.sizeBytes();
          if (unusedLeft == 0) {
            if (!advanceDst) {
              advanceDst = true;
            } else {
              advanceSrc = true;
            }
          } else if (unusedLeft < 0) {
            error(where(desc) + ": unused bytes do not line up with the other side's fields near '" + user.field() + "'");
            return;
          }
          continue;
        }
        if (!s.field().equals(d.field())) {
          if (startsWith(d, s.field())) { // the destination moved fields into a struct
            dstOuter.push(dst);
            dst = d.description().fields().iterator();
            advanceSrc = false;
            continue;
          }
          if (startsWith(s, d.field())) { // the destination took fields out of a struct
            srcOuter.push(src);
            src = s.description().fields().iterator();
            advanceDst = false;
            continue;
          }
          if (isUnused(s) || isUnused(d)) {
            if (s.sizeBytes() == d.sizeBytes()) {
              continue;
            }
            if (isUnused(d)) {
              advanceDst = false;
              unusedLeft = (long) d.sizeBytes() - s.sizeBytes();
            } else {
              advanceSrc = false;
              unusedLeft = (long) s.sizeBytes() - d.sizeBytes();
            }
            continue;
          }
          error(where(desc) + ": expected field '" + s.field() + "', the destination has '" + d.field()
              + "' (the rest of '" + desc + "' is not compared)");
          return;
        }
        field(desc, s, d);
      }
    }

    void field(String desc, Field s, Field d) {
      if (s.versionId() > d.versionId()) {
        error(where(desc) + ", field '" + s.field() + "': source version " + s.versionId()
            + " is newer than the destination's " + d.versionId());
      }
      if (s.description() == null) {
        if (s.sizeBytes() != d.sizeBytes()) {
          error(where(desc) + ", field '" + s.field() + "': size " + s.sizeBytes() + " on the source, "
              + d.sizeBytes() + " on the destination");
        }
        return;
      }
      // a struct: its size is the host's; its description is what goes on the wire
      if (d.description() == null) {
        error(where(desc) + ", field '" + s.field() + "': a struct on the source, not on the destination");
        return;
      }
      description(s.description(), d.description());
    }

    private static boolean isUnused(Field f) {
      return f.field().equals("unused");
    }

    /** Whether {@code f} is a struct whose first field is called {@code name}. */
    private static boolean startsWith(Field f, String name) {
      Description sub = f.description();
      return sub != null && !sub.fields().isEmpty() && sub.fields().getFirst().field().equals(name);
    }
  }
}
