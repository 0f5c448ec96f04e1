package dev.ferry.stream;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A streaming JSON writer that produces exactly the text of QEMU's compact JSON writer, as used for
 * the vmdesc after EOF: members separated by {@code ", "}, keys by {@code ": "}, no newlines,
 * integers in decimal, and strings escaped to 7-bit ASCII ({@code \\uXXXX} in upper-case hex for
 * control characters and everything at or above 0x7F).
 *
 * <pre>{@code
 * w.beginObject().name("page_size").value(4096).name("devices").beginArray()...endArray().endObject();
 * }</pre>
 */
public final class QemuJsonWriter {
  private final StringBuilder sb = new StringBuilder();
  /** Per open container: has it got a first element yet. */
  private final Deque<boolean[]> stack = new ArrayDeque<>();
  private boolean afterName;

  private void beforeValue() {
    if (afterName) {
      afterName = false;
      return;
    }
    boolean[] top = stack.peek();
    if (top != null) {
      if (top[0]) {
        sb.append(", ");
      }
      top[0] = true;
    }
  }

  public QemuJsonWriter beginObject() {
    beforeValue();
    sb.append('{');
    stack.push(new boolean[1]);
    return this;
  }

  public QemuJsonWriter endObject() {
    stack.pop();
    sb.append('}');
    return this;
  }

  public QemuJsonWriter beginArray() {
    beforeValue();
    sb.append('[');
    stack.push(new boolean[1]);
    return this;
  }

  public QemuJsonWriter endArray() {
    stack.pop();
    sb.append(']');
    return this;
  }

  public QemuJsonWriter name(String name) {
    beforeValue();
    JsonStrings.quote(sb, name, JsonStrings.Style.QEMU);
    sb.append(": ");
    afterName = true;
    return this;
  }

  public QemuJsonWriter value(long v) {
    beforeValue();
    sb.append(v);
    return this;
  }

  public QemuJsonWriter value(boolean v) {
    beforeValue();
    sb.append(v);
    return this;
  }

  public QemuJsonWriter value(String v) {
    beforeValue();
    JsonStrings.quote(sb, v, JsonStrings.Style.QEMU);
    return this;
  }

  /** Appends already-formatted JSON (e.g. a nested description built by another writer). */
  public QemuJsonWriter raw(String json) {
    beforeValue();
    sb.append(json);
    return this;
  }

  /** Depth of open objects and arrays. */
  public int depth() {
    return stack.size();
  }

  /** The text so far. */
  @Override
  public String toString() {
    return sb.toString();
  }
}
