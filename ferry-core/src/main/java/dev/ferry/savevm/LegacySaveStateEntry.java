package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import java.io.IOException;

/**
 * A device saved by a hand-written pair of functions instead of a VMState description (QEMU's
 * legacy save_state/load_state). Its vmdesc entry is an opaque buffer of the bytes written, as QEMU
 * describes such devices: {@code "size": n, "fields": [{"name": "data", "size": n, "type": "buffer"}]}.
 */
public final class LegacySaveStateEntry implements SaveStateEntry {
  /** Writes the device's state. */
  @FunctionalInterface
  public interface SaveFunction {
    void save(MigrationOutput out) throws IOException;
  }

  /** Reads state written by {@code version} (at most the entry's version). */
  @FunctionalInterface
  public interface LoadFunction {
    void load(MigrationInput in, int version) throws IOException;
  }

  private final String idstr;
  private final int instanceId;
  private final int version;
  private final SaveFunction save;
  private final LoadFunction load;

  private LegacySaveStateEntry(String idstr, int instanceId, int version, SaveFunction save, LoadFunction load) {
    this.idstr = idstr;
    this.instanceId = instanceId;
    this.version = version;
    this.save = save;
    this.load = load;
  }

  public static LegacySaveStateEntry of(
      String idstr, int instanceId, int version, SaveFunction save, LoadFunction load) {
    return new LegacySaveStateEntry(idstr, instanceId, version, save, load);
  }

  @Override
  public String idstr() {
    return idstr;
  }

  @Override
  public int instanceId() {
    return instanceId;
  }

  @Override
  public int version() {
    return version;
  }

  @Override
  public void save(MigrationOutput out, QemuJsonWriter desc) throws IOException {
    long before = out.position();
    save.save(out);
    long size = out.position() - before;
    desc.name("size").value(size);
    desc.name("fields").beginArray().beginObject();
    desc.name("name").value("data").name("size").value(size).name("type").value("buffer");
    desc.endObject().endArray();
  }

  @Override
  public void load(MigrationInput in, int version) throws IOException {
    load.load(in, version);
  }
}
