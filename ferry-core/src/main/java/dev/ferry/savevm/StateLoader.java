package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.VersionMismatchException;
import java.io.IOException;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Loads a stream into the entries of a {@link SaveStateRegistry} (QEMU's qemu_loadvm_state on the
 * destination): checks the configuration against this side's, resolves every section by (idstr,
 * instance), checks versions, and hands commands to a {@link CommandListener}.
 */
public final class StateLoader implements StreamHandler, AutoCloseable {
  private final SaveStateRegistry registry;
  /** This load's state of each live handler, opened by {@link #openLoads} (or at its first section). */
  private final java.util.Map<SaveStateRegistry.Live, LiveLoad> loads = new java.util.LinkedHashMap<>();
  private SaveOptions loadOptions = SaveOptions.NONE;
  private final Configuration expected;
  private final CommandListener commands;
  private final Set<String> loaded = new LinkedHashSet<>();
  private Configuration received;
  /** The machine types this build knows, to name them when a stream's type is none of them; empty: not told. */
  private List<String> knownMachineTypes = List.of();

  /**
   * @param expected this side's configuration: the stream's must match it (machine type exactly,
   *     capabilities, page bits); null skips the check
   */
  public StateLoader(SaveStateRegistry registry, Configuration expected, CommandListener commands) {
    this.registry = registry;
    this.expected = expected;
    this.commands = commands;
  }

  /**
   * The machine types this build knows (QEMU's registered machine classes): a stream whose type
   * is none of them is refused as an unknown type listing these; one that is known but not this
   * side's gets QEMU's "Machine type received is ... and local is ...".
   */
  public StateLoader knownMachineTypes(List<String> names) {
    this.knownMachineTypes = List.copyOf(names);
    return this;
  }

  /** Loads a whole stream: live handlers' loads opened, all records, the loads closed. */
  public static StateLoader load(
      SaveStateRegistry registry,
      MigrationInput in,
      StreamReader.Options options,
      Configuration expected,
      CommandListener commands)
      throws IOException {
    return load(registry, in, options, expected, List.of(), SaveOptions.NONE, commands);
  }

  /**
   * {@link #load(SaveStateRegistry, MigrationInput, StreamReader.Options, Configuration, CommandListener)}
   * naming {@code knownMachineTypes} on an unknown type, the live handlers' loads opened with {@code
   * loadOptions}.
   */
  public static StateLoader load(
      SaveStateRegistry registry,
      MigrationInput in,
      StreamReader.Options options,
      Configuration expected,
      List<String> knownMachineTypes,
      SaveOptions loadOptions,
      CommandListener commands)
      throws IOException {
    StateLoader loader = new StateLoader(registry, expected, commands).knownMachineTypes(knownMachineTypes);
    try (loader) {
      loader.openLoads(loadOptions);
      new StreamReader(in, loader, options).readAll();
    }
    return loader;
  }

  /**
   * Opens this load's state of every live handler with {@code options} (before the first section,
   * as QEMU's load_setup runs); a handler whose section arrives without it is opened then, with the
   * same options.
   */
  public void openLoads(SaveOptions options) throws IOException {
    this.loadOptions = java.util.Objects.requireNonNull(options, "options");
    for (SaveStateRegistry.Live l : registry.live()) {
      liveLoad(l);
    }
  }

  private LiveLoad liveLoad(SaveStateRegistry.Live l) throws IOException {
    LiveLoad load = loads.get(l);
    if (load == null) {
      load = l.handler().openLoad(loadOptions);
      loads.put(l, load);
    }
    return load;
  }

  /** This load's state of the live handler {@code idstr} if it is a {@code type}, or null. */
  public <T extends LiveLoad> T liveLoad(String idstr, Class<T> type) {
    for (java.util.Map.Entry<SaveStateRegistry.Live, LiveLoad> e : loads.entrySet()) {
      if (e.getKey().handler().idstr().equals(idstr) && type.isInstance(e.getValue())) {
        return type.cast(e.getValue());
      }
    }
    return null;
  }

  /** Closes the live handlers' loads, each in its own guard; the results stay readable. */
  @Override
  public void close() {
    RuntimeException first = null;
    for (LiveLoad l : loads.values()) {
      try {
        l.close();
      } catch (RuntimeException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    loads.clear();
    if (first != null) {
      throw first;
    }
  }

  /** "idstr instance" of every section loaded so far, in stream order (each once). */
  public Set<String> loadedSections() {
    return Set.copyOf(loaded);
  }

  public boolean wasLoaded(String idstr, int instanceId) {
    return loaded.contains(idstr + " " + instanceId);
  }

  /** The configuration the stream carried, or null. */
  public Configuration receivedConfiguration() {
    return received;
  }

  @Override
  public void configuration(Configuration config, long offset) throws IOException {
    received = config;
    if (expected == null) {
      return;
    }
    if (!config.machineType().equals(expected.machineType())) {
      if (!knownMachineTypes.isEmpty() && !knownMachineTypes.contains(config.machineType())) {
        throw new MigrationStreamException(
            "unknown machine type '" + config.machineType() + "' in the stream (known: "
                + String.join(", ", knownMachineTypes) + "; local is '" + expected.machineType() + "')",
            offset);
      }
      // QEMU's configuration_post_load text
      throw new MigrationStreamException(
          "Machine type received is '" + config.machineType() + "' and local is '" + expected.machineType() + "'",
          offset);
    }
    if (!config.targetPageBits().equals(expected.targetPageBits())) {
      throw new MigrationStreamException(
          "target page bits mismatch: stream " + config.targetPageBits() + ", here " + expected.targetPageBits(), offset);
    }
    if (!Set.copyOf(config.capabilities()).equals(Set.copyOf(expected.capabilities()))) {
      throw new MigrationStreamException(
          "validated capabilities differ: stream " + config.capabilities() + ", here " + expected.capabilities(), offset);
    }
  }

  @Override
  public void section(SectionHeader h, MigrationInput in) throws IOException {
    SaveStateRegistry.Registration r = registry.find(h.idstr(), h.instanceId());
    if (r == null) {
      throw new MigrationStreamException(
          "unknown section: no device '" + h.idstr() + "' instance " + h.instanceId() + " on this side", h.offset());
    }
    switch (r) {
      case SaveStateRegistry.Device d -> {
        if (h.type() != SectionType.FULL) {
          throw new MigrationStreamException(h.type() + " for device '" + h.idstr() + "', which only has FULL sections", h.offset());
        }
        SaveStateEntry e = d.entry();
        if (h.version() > e.version()) {
          throw new VersionMismatchException("section '" + h.idstr() + "'", h.version(), 0, e.version());
        }
        e.load(in, (int) h.version());
      }
      case SaveStateRegistry.Live l -> {
        if (h.type() == SectionType.FULL) {
          throw new MigrationStreamException("FULL section for live state '" + h.idstr() + "'", h.offset());
        }
        if (h.version() > l.handler().version()) {
          throw new VersionMismatchException("section '" + h.idstr() + "'", h.version(), 0, l.handler().version());
        }
        liveLoad(l).load(in, (int) h.version(), h.type());
      }
    }
    loaded.add(h.idstr() + " " + h.instanceId());
  }

  @Override
  public void command(StreamCommand command, long offset) throws IOException {
    commands.command(command, offset);
  }
}
