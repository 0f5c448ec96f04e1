package dev.ferry.vmstate;

import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;

/** Save/load helpers for the vmstate tests. */
final class VMStateTesting {
  private VMStateTesting() {}

  static <T> byte[] save(VMStateDescription<T> d, T obj) {
    return save(d, obj, null);
  }

  /** Saves {@code obj}; with {@code desc}, describes it into a new object there. */
  static <T> byte[] save(VMStateDescription<T> d, T obj, QemuJsonWriter desc) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes))) {
      if (desc == null) {
        d.save(out, obj);
      } else {
        desc.beginObject();
        d.save(out, obj, desc);
        desc.endObject();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** Loads all of {@code bytes} at {@code version} and checks nothing is left over. */
  static <T> void load(VMStateDescription<T> d, byte[] bytes, T obj, int version)
      throws IOException {
    MigrationInput in = MigrationInput.of(bytes);
    d.load(in, obj, version);
    if (!in.atEnd()) {
      throw new AssertionError("bytes left after the body at offset " + in.position());
    }
  }
}
