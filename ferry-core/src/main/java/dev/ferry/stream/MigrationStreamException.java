package dev.ferry.stream;

import java.io.IOException;

/**
 * A migration stream that cannot be read or written, with where it happened: the stream offset, the
 * section (idstr and instance id), the field path and the versions involved. Loaders add context as
 * the error travels outwards ({@link #inSection}, {@link #inField}), so the final one-line message
 * reads like {@code too new: version 3 > local 2 (section 'cpu' instance 0, field 'regs', offset 1234)}.
 */
public class MigrationStreamException extends IOException {
  private final String what;
  private long offset = -1;
  private String section;
  private long instanceId = -1;
  private String field;

  public MigrationStreamException(String what) {
    super(what);
    this.what = what;
  }

  public MigrationStreamException(String what, long offset) {
    this(what);
    this.offset = offset;
  }

  public MigrationStreamException(String what, long offset, Throwable cause) {
    super(what, cause);
    this.what = what;
    this.offset = offset;
  }

  /** The bare description, without the context suffix. */
  public String what() {
    return what;
  }

  /** Stream offset where the problem was seen, or -1. */
  public long offset() {
    return offset;
  }

  public String section() {
    return section;
  }

  public long instanceId() {
    return instanceId;
  }

  /** Field path inside the section, outermost first (e.g. {@code regs[3]} or {@code dev.cfg}). */
  public String field() {
    return field;
  }

  /** Sets the offset unless one is already known. */
  public MigrationStreamException atOffset(long off) {
    if (this.offset < 0) {
      this.offset = off;
    }
    return this;
  }

  /** Sets the section unless an inner one is already known. */
  public MigrationStreamException inSection(String idstr, long instance) {
    if (this.section == null) {
      this.section = idstr;
      this.instanceId = instance;
    }
    return this;
  }

  /** Prepends an outer field name to the field path. */
  public MigrationStreamException inField(String name) {
    if (name == null || name.isEmpty()) {
      return this;
    }
    if (field == null) {
      field = name;
    } else if (field.startsWith("[")) {
      field = name + field;
    } else {
      field = name + "." + field;
    }
    return this;
  }

  @Override
  public String getMessage() {
    StringBuilder sb = new StringBuilder(what);
    StringBuilder ctx = new StringBuilder();
    if (section != null) {
      ctx.append("section '").append(section).append("'");
      if (instanceId >= 0) {
        ctx.append(" instance ").append(instanceId);
      }
    }
    if (field != null) {
      if (!ctx.isEmpty()) {
        ctx.append(", ");
      }
      ctx.append("field '").append(field).append("'");
    }
    if (offset >= 0) {
      if (!ctx.isEmpty()) {
        ctx.append(", ");
      }
      ctx.append("offset ").append(offset);
    }
    if (!ctx.isEmpty()) {
      sb.append(" (").append(ctx).append(')');
    }
    return sb.toString();
  }
}
