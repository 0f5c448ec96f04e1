package dev.ferry.machine;

import dev.ferry.block.DiskImage;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.nio.charset.StandardCharsets;

/**
 * The device state of one {@code --drive} (section {@code drive}, instance = its index): its name and
 * size, which the destination's drive at that index must equal. The image content is not here: it
 * moves in the {@code block} live section, or stays on storage both sides share.
 */
final class DriveDevice implements Device {
  private static final int MAX_NAME_BYTES = 255;

  /**
   * Layout v1: {@code name_len} (uint8) + {@code name} (UTF-8), checked equal after the load, and
   * {@code size_bytes} (uint64, QEMU's _EQUAL: a disk of another size fails the load naming it).
   */
  static final VMStateDescription<DriveDevice> VMSTATE =
      VMStateDescription.<DriveDevice>builder("drive")
          .version(1)
          .minimumVersion(1)
          .preSave(d -> d.nameBuf = d.image.name().getBytes(StandardCharsets.UTF_8))
          .uint8("name_len", d -> d.nameBuf.length, (d, v) -> d.nameBuf = new byte[(int) v])
          .vbuffer("name", "name_len", MAX_NAME_BYTES, d -> d.nameBuf, (d, v) -> d.nameBuf = v)
          .uint64Equal("size_bytes", d -> d.image.sizeBytes())
          .postLoad(
              (d, v) -> {
                String loaded = new String(d.nameBuf, StandardCharsets.UTF_8);
                if (!loaded.equals(d.image.name())) {
                  throw new IllegalArgumentException(
                      "drive " + d.index + " is '" + loaded + "' in the stream, '" + d.image.name() + "' here");
                }
              })
          .build();

  private final int index;
  private final DiskImage image;
  private byte[] nameBuf = new byte[0];

  DriveDevice(int index, DiskImage image) {
    this.index = index;
    this.image = image;
  }

  @Override
  public String idstr() {
    return "drive";
  }

  @Override
  public int instanceId() {
    return index;
  }

  @Override
  public SaveStateEntry stateEntry() {
    return VMStateEntry.of(idstr(), index, VMSTATE, this);
  }
}
