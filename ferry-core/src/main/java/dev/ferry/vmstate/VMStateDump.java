package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The static descriptions of a build's devices, in the shape of QEMU's {@code -dump-vmstate} JSON
 * (spec 7.6), for comparing two builds with {@link VMStateCompat}. Held as records; {@link
 * #toJson()} prints the 2-space indented text. (Reading the text back is not implemented yet.)
 *
 * @param machine the machine type name ({@code "vmschkmachine"})
 * @param sections one entry per registered device type, in output order
 */
public record VMStateDump(String machine, List<Section> sections) {
  public VMStateDump {
    Objects.requireNonNull(machine, "machine");
    sections = List.copyOf(sections);
  }

  /** A dump of {@code devices} (type name → description), in the map's iteration order. */
  public static VMStateDump of(String machine, Map<String, VMStateDescription<?>> devices) {
    List<Section> sections = new ArrayList<>();
    devices.forEach((type, d) -> sections.add(Section.of(type, d)));
    return new VMStateDump(machine, sections);
  }

  /** The section named {@code name}, or null. */
  public Section section(String name) {
    for (Section s : sections) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    return null;
  }

  /** One device type: its name and top-level description. */
  public record Section(String name, int versionId, int minimumVersionId, Description description) {
    /** The section of description {@code d} registered as {@code name}. */
    public static Section of(String name, VMStateDescription<?> d) {
      return new Section(name, d.version(), d.minimumVersion(), d.dump());
    }
  }

  /** A description: fields in order and subsections. */
  public record Description(
      String name,
      int versionId,
      int minimumVersionId,
      List<Field> fields,
      List<Description> subsections) {
    public Description {
      fields = List.copyOf(fields);
      subsections = List.copyOf(subsections);
    }
  }

  /**
   * A field: its since-version, whether an exists-test decides it, its element size in bytes (0
   * when known only at run time) and, for structs, the nested description.
   */
  public record Field(
      String field, int versionId, boolean fieldExists, int sizeBytes, Description description) {}

  /** The dump as QEMU prints it: pretty JSON with 2-space indent. */
  public String toJson() {
    Pretty p = new Pretty();
    p.open('{');
    p.key("vmschkmachine");
    p.open('{');
    p.key("Name");
    p.string(machine);
    p.close('}');
    for (Section s : sections) {
      p.key(s.name());
      p.open('{');
      p.key("Name");
      p.string(s.name());
      p.key("version_id");
      p.number(s.versionId());
      p.key("minimum_version_id");
      p.number(s.minimumVersionId());
      p.key("Description");
      description(p, s.description());
      p.close('}');
    }
    p.close('}');
    return p.sb.append('\n').toString();
  }

  private static void description(Pretty p, Description d) {
    p.open('{');
    p.key("name");
    p.string(d.name());
    p.key("version_id");
    p.number(d.versionId());
    p.key("minimum_version_id");
    p.number(d.minimumVersionId());
    if (!d.fields().isEmpty()) {
      p.key("Fields");
      p.open('[');
      for (Field f : d.fields()) {
        p.element();
        p.open('{');
        p.key("field");
        p.string(f.field());
        p.key("version_id");
        p.number(f.versionId());
        p.key("field_exists");
        p.literal(Boolean.toString(f.fieldExists()));
        p.key("size");
        p.number(f.sizeBytes());
        if (f.description() != null) {
          p.key("Description");
          description(p, f.description());
        }
        p.close('}');
      }
      p.close(']');
    }
    if (!d.subsections().isEmpty()) {
      p.key("Subsections");
      p.open('[');
      for (Description s : d.subsections()) {
        p.element();
        description(p, s);
      }
      p.close(']');
    }
    p.close('}');
  }

  /** A minimal pretty printer: the caller says where keys and array elements start. */
  private static final class Pretty {
    final StringBuilder sb = new StringBuilder();
    final List<Boolean> first = new ArrayList<>();
    boolean afterKey;

    void indent() {
      sb.append('\n').append("  ".repeat(first.size()));
    }

    /** Separator and indent before a key or array element. */
    void item() {
      int top = first.size() - 1;
      if (!first.get(top)) {
        sb.append(',');
      }
      first.set(top, false);
      indent();
    }

    void key(String k) {
      item();
      string(k);
      sb.append(": ");
      afterKey = true;
    }

    void element() {
      item();
    }

    void open(char c) {
      afterKey = false;
      sb.append(c);
      first.add(true);
    }

    void close(char c) {
      boolean empty = first.removeLast();
      if (!empty) {
        indent();
      }
      sb.append(c);
    }

    void number(long v) {
      sb.append(v);
    }

    void literal(String s) {
      sb.append(s);
    }

    void string(String s) {
      QemuJsonWriter w = new QemuJsonWriter();
      w.value(s);
      sb.append(w);
    }
  }
}
