package dev.ferry.stream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HexFormat;

/**
 * The 64-byte message that opens every multifd channel of QEMU 7.2 ({@code MultiFDInit_t}), all
 * integers big-endian:
 *
 * <pre>
 *   0      4        8                     24   25          32                      64
 *   +------+--------+---------------------+----+-----------+-----------------------+
 *   |magic |version | uuid (16 raw bytes) | id | unused[7] | unused[32]            |
 *   +------+--------+---------------------+----+-----------+-----------------------+
 * </pre>
 *
 * <p>The UUID is the VM's system UUID ({@code -uuid}), all zeros when none was given; a destination
 * compares it with its own. The id is the channel index, 0 … channels-1.
 */
public record MultifdInit(byte[] uuid, int id) {
  public static final int MAGIC = 0x11223344;
  public static final int VERSION = 1;
  public static final int LENGTH = 64;
  public static final int UUID_LENGTH = 16;

  public MultifdInit {
    if (uuid.length != UUID_LENGTH || id < 0 || id > 255) {
      throw new IllegalArgumentException("multifd init: uuid of " + uuid.length + " bytes, id " + id);
    }
    uuid = uuid.clone();
  }

  @Override
  public byte[] uuid() {
    return uuid.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MultifdInit m && m.id == id && java.util.Arrays.equals(m.uuid, uuid);
  }

  @Override
  public int hashCode() {
    return 31 * java.util.Arrays.hashCode(uuid) + id;
  }

  @Override
  public String toString() {
    return "MultifdInit[uuid=" + uuidText() + ", id=" + id + "]";
  }

  /** The UUID in QEMU's text form ({@code 12345678-9abc-def0-1122-334455667788}). */
  public String uuidText() {
    return uuidText(uuid);
  }

  /** {@code uuid} (16 bytes) in QEMU's text form. */
  public static String uuidText(byte[] uuid) {
    String h = HexFormat.of().formatHex(uuid);
    return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20) + "-"
        + h.substring(20);
  }

  /** Whether {@code other} (16 bytes) is this message's UUID. */
  public boolean sameUuid(byte[] other) {
    return java.util.Arrays.equals(uuid, other);
  }

  /** Writes the 64 bytes at {@code out}'s position. */
  public void write(ByteBuffer out) {
    out.putInt(MAGIC).putInt(VERSION).put(uuid).put((byte) id);
    for (int i = 25; i < LENGTH; i++) {
      out.put((byte) 0);
    }
  }

  /** Reads and checks magic and version (QEMU's texts); the UUID and id are the caller's to check. */
  public static MultifdInit read(MigrationInput in) throws IOException {
    long at = in.position();
    int magic = in.readBe32();
    if (magic != MAGIC) {
      throw in.fail(new MigrationStreamException(
          String.format("multifd: received packet magic %x expected %x", magic, MAGIC), at));
    }
    long version = in.readBe32Unsigned();
    if (version != VERSION) {
      throw in.fail(new MigrationStreamException(
          String.format("multifd: received packet version %d expected %d", version, VERSION), at + 4));
    }
    byte[] uuid = in.readBytes(UUID_LENGTH);
    int id = in.readU8();
    in.skip(LENGTH - 25);
    return new MultifdInit(uuid, id);
  }

  /** The machine's UUID, or all zeros for a machine without one (as QEMU's default qemu_uuid). */
  public static byte[] uuidOrZeros(byte[] uuid) {
    return uuid == null ? new byte[UUID_LENGTH] : uuid;
  }
}
