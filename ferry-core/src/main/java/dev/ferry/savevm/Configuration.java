package dev.ferry.savevm;

import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * The configuration section (type 0x07, right after the header): the machine type and the
 * optional subsections {@code configuration/target-page-bits}, {@code configuration/capabilities}
 * and {@code configuration/uuid}.
 *
 * <pre>
 *  +----+----------+-----------------+--------------------------------------------+
 *  | 07 | be32 len | machine type    | [05, cstr "configuration/...", be32 1, body]*|
 *  +----+----------+-----------------+--------------------------------------------+
 * </pre>
 *
 * @param capabilities validated capabilities that are on (QAPI names), empty when none
 * @param uuid 16 bytes, or null
 */
public record Configuration(
    String machineType, OptionalInt targetPageBits, List<String> capabilities, byte[] uuid) {
  /** Longest machine type name accepted (QEMU's are around 20 bytes). */
  public static final int MAX_MACHINE_TYPE_LENGTH = 256;
  /** Most capabilities a configuration may list. */
  public static final int MAX_CAPABILITIES = 64;

  public Configuration {
    Objects.requireNonNull(machineType, "machineType");
    Objects.requireNonNull(targetPageBits, "targetPageBits");
    capabilities = List.copyOf(capabilities);
    if (uuid != null && uuid.length != 16) {
      throw new IllegalArgumentException("uuid must be 16 bytes");
    }
  }

  public static Configuration of(String machineType) {
    return new Configuration(machineType, OptionalInt.empty(), List.of(), null);
  }
}
