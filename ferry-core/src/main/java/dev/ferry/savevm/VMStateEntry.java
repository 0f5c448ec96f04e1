package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.vmstate.codec.VMStateCodec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A device's registration for the section stream: one object saved and loaded by one description
 * under an idstr and instance id (QEMU's {@code vmstate_register}).
 *
 * @param <T> the device state type
 */
public final class VMStateEntry<T> implements SaveStateEntry {
  private final String idstr;
  private final int instanceId;
  private final VMStateDescription<T> vmsd;
  private final T object;

  private VMStateEntry(String idstr, int instanceId, VMStateDescription<T> vmsd, T object) {
    this.idstr = Objects.requireNonNull(idstr, "idstr");
    int len = idstr.getBytes(StandardCharsets.ISO_8859_1).length;
    if (len == 0 || len > 255) {
      throw new IllegalArgumentException("idstr must be 1..255 bytes: '" + idstr + "'");
    }
    this.instanceId = instanceId;
    this.vmsd = Objects.requireNonNull(vmsd, "vmsd");
    this.object = Objects.requireNonNull(object, "object");
  }

  public static <T> VMStateEntry<T> of(
      String idstr, int instanceId, VMStateDescription<T> vmsd, T object) {
    return new VMStateEntry<>(idstr, instanceId, vmsd, object);
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
    return vmsd.version();
  }

  @Override
  public int priority() {
    return vmsd.priority();
  }

  @Override
  public boolean needed() {
    return vmsd.isNeeded(object);
  }

  public VMStateDescription<T> description() {
    return vmsd;
  }

  @Override
  public VMStateDescription<T> vmstateDescription() {
    return vmsd;
  }

  public T object() {
    return object;
  }

  @Override
  public void save(MigrationOutput out, QemuJsonWriter desc) throws IOException {
    VMStateCodec.save(vmsd, out, object, desc);
  }

  @Override
  public void load(MigrationInput in, int version) throws IOException {
    try {
      VMStateCodec.load(vmsd, in, object, version);
    } catch (MigrationStreamException e) {
      throw e.inSection(idstr, Integer.toUnsignedLong(instanceId));
    }
  }

  @Override
  public String toString() {
    return "VMStateEntry[" + idstr + " #" + Integer.toUnsignedString(instanceId) + ", " + vmsd + "]";
  }
}
