package dev.ferry.machine;

import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * A versioned machine type, as QEMU's ({@code pc-i440fx-7.1}, {@code pc-i440fx-7.2}): a name that
 * pins the layout of everything the machine saves — the versions of its devices' state and the
 * sections it registers — so that a machine of one type saves exactly what every Ferry build that
 * knows the type loads. A newer Ferry migrates to an older one by running the older type ({@code
 * ferry run --machine ferry-1.0}); the type travels in the stream's configuration section, and a
 * destination accepts only its own type (QEMU: "Machine type received is ... and local is ...").
 *
 * <p>What each type pins (QEMU's compat properties, e.g. {@code hw_compat_7_1}):
 *
 * <table>
 *   <caption>Ferry's machine types</caption>
 *   <tr><th>type</th><th>{@code cpu}</th><th>{@code ferry-ram-layout}</th></tr>
 *   <tr><td>{@code ferry-1.0}</td><td>layout v1: section version 1, no {@code flags}, no
 *       subsections (the guest program's settings do not travel)</td><td>not sent (loaded and
 *       checked when a stream has it, as earlier builds sent it)</td></tr>
 *   <tr><td>{@code ferry-1.1}</td><td>layout v2: version 2 (loads 1), {@code flags}, subsections
 *       {@code cpu/xregs} and {@code cpu/program}</td><td>sent</td></tr>
 * </table>
 *
 * <p>A new type is added whenever a device's saved layout changes; the older types keep their
 * pins forever (a snapshot or a destination of that type must stay loadable). The newest type is
 * the default.
 *
 * @param name the name in the configuration section and on the command line
 * @param cpuLayout the cpu state layout of the type's machines (unless overridden, as QEMU's
 *     {@code -global}, by {@link Machine.Builder#cpuLayout} or {@code -Dferry.cpu.layout})
 * @param ramLayoutSection whether the machine sends the {@code ferry-ram-layout} section (it loads
 *     one either way)
 * @param description one line for {@code query-machines} and {@code --machine help}
 */
public record MachineType(String name, CpuDevice.Layout cpuLayout, boolean ramLayoutSection, String description) {
  /** The first release: cpu layout v1, the RAM layout section not sent. */
  public static final MachineType FERRY_1_0 =
      new MachineType("ferry-1.0", CpuDevice.Layout.V1, false, "Ferry 1.0 (cpu layout v1)");

  /** cpu layout v2 (flags, cpu/xregs, cpu/program) and the RAM layout section. */
  public static final MachineType FERRY_1_1 =
      new MachineType("ferry-1.1", CpuDevice.Layout.V2, true, "Ferry 1.1 (cpu layout v2, RAM layout section)");

  /** Every machine type this build knows, oldest first. */
  public static final List<MachineType> ALL = List.of(FERRY_1_0, FERRY_1_1);

  public MachineType {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(cpuLayout, "cpuLayout");
    Objects.requireNonNull(description, "description");
  }

  /** The default type: the newest. */
  public static MachineType newest() {
    return ALL.getLast();
  }

  /** Whether this is the default type ({@code query-machines}' {@code is-default}). */
  public boolean isDefault() {
    return this.equals(newest());
  }

  /** The names of {@link #ALL}, oldest first. */
  public static List<String> names() {
    return ALL.stream().map(MachineType::name).toList();
  }

  /**
   * The type called {@code name}.
   *
   * @throws IllegalArgumentException naming the known types when there is none
   */
  public static MachineType byName(String name) {
    for (MachineType t : ALL) {
      if (t.name.equals(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException(
        "unknown machine type '" + name + "' (known: " + String.join(", ", names()) + ")");
  }

  /** The compat properties the type pins, QEMU's {@code driver.property=value} notation. */
  public List<String> compatProperties() {
    return List.of(
        "cpu.layout=" + cpuLayout.code(), "machine.ram-layout-section=" + (ramLayoutSection ? "on" : "off"));
  }

  /** One line per type, name and description, the default marked: what {@code --machine help} prints. */
  public static String describeAll() {
    return ALL.stream()
        .map(t -> t.name + "  " + t.description + (t.isDefault() ? " (default)" : ""))
        .collect(Collectors.joining("\n"));
  }
}
