package dev.ferry.machine;

import java.util.Objects;
import java.util.function.Function;

/**
 * Internal: how Ferry's own modules reach the engine behind a {@code dev.ferry.api.FerryMachine},
 * which on purpose exposes none of it in its public signatures. Used by {@code ferry run}'s code
 * when it serves a machine an embedder built through the API (the ferry-kv service): the same
 * monitors, incoming migration and ready line as for its own machines, on the machine's own {@link
 * MachineHost}. The API registers the accessor when its class initialises (the JDK's
 * "shared secrets" pattern); this package is not part of the public API.
 */
public final class EmbedderBridge {
  private static volatile Function<Object, MachineHost> hosts;

  private EmbedderBridge() {}

  /** Called once by the API class. */
  public static void register(Function<Object, MachineHost> accessor) {
    hosts = Objects.requireNonNull(accessor, "accessor");
  }

  /**
   * The host (machine, migration, save/load) of {@code ferryMachine}.
   *
   * @throws IllegalArgumentException when it is no {@code FerryMachine}
   */
  public static MachineHost hostOf(Object ferryMachine) {
    Objects.requireNonNull(ferryMachine, "ferryMachine");
    Function<Object, MachineHost> h = hosts; // set: building the FerryMachine initialised its class
    if (h == null) {
      throw new IllegalStateException("no FerryMachine class registered");
    }
    return h.apply(ferryMachine);
  }
}
