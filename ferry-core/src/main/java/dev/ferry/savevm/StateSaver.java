package dev.ferry.savevm;

import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.StreamHeader;
import dev.ferry.stream.QemuJsonWriter;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the state of everything in a {@link SaveStateRegistry} in QEMU's phases (savevm.c's
 * qemu_savevm_state_*): header and configuration, live setup (START), live iterations (PART), live
 * completion (END), device state (FULL), EOF and the vmdesc describing every FULL section.
 *
 * <p>The state of this save lives here: {@link #setupLive()} opens one {@link LiveSave} per active
 * live handler, and {@link #cleanupLive()} closes them, which the owner of the saver must call
 * however the save ends.
 */
public final class StateSaver {
  private static final Logger LOG = LoggerFactory.getLogger(StateSaver.class);

  private final SaveStateRegistry registry;
  private StreamWriter writer;
  private final SaveOptions options;
  private final QemuJsonWriter vmdesc = new QemuJsonWriter();
  /** This save's live state, in registry order; filled by setupLive. */
  private final List<Session> live = new ArrayList<>();

  private record Session(SaveStateRegistry.Live entry, LiveSave save) {}

  public StateSaver(SaveStateRegistry registry, StreamWriter writer) {
    this(registry, writer, SaveOptions.NONE);
  }

  /** A saver whose live handlers get {@code options} (e.g. a migration's RAM options). */
  public StateSaver(SaveStateRegistry registry, StreamWriter writer, SaveOptions options) {
    this.registry = registry;
    this.writer = writer;
    this.options = options;
  }

  public StreamWriter writer() {
    return writer;
  }

  /**
   * From now on this save writes through {@code next} (postcopy recovery: the stream goes on over a
   * new connection, without a header). The live handlers are told by their owner.
   */
  public void continueOn(StreamWriter next) {
    writer = java.util.Objects.requireNonNull(next, "next");
  }

  /** Header, then the configuration section unless {@code config} is null. */
  public void begin(Configuration config) throws IOException {
    writer.writeHeader();
    if (config != null) {
      writer.writeConfiguration(config);
    }
  }

  /**
   * Opens this save's state of every active live handler and writes their START sections.
   *
   * @throws IllegalStateException when a handler cannot take part in another save now (what was
   *     opened so far is closed by {@link #cleanupLive()})
   */
  public void setupLive() throws IOException {
    if (!live.isEmpty()) {
      throw new IllegalStateException("live state is set up already");
    }
    for (SaveStateRegistry.Live l : registry.live()) {
      if (l.handler().active(options)) {
        live.add(new Session(l, l.handler().openSave(options)));
      }
    }
    for (Session s : live) {
      SaveStateRegistry.Live l = s.entry();
      writer.beginSection(SectionType.START, l.sectionId(), l.idstr(), l.instanceId(), l.handler().version());
      s.save().setup(writer.output());
      writer.endSection(l.sectionId());
    }
    writer.flush();
  }

  /**
   * Closes this save's live state (stops RAM's dirty log, frees caches); each close runs even when
   * another fails. Call it however the save ends; calling it again does nothing.
   */
  public void cleanupLive() {
    for (Session s : live) {
      try {
        s.save().close();
      } catch (RuntimeException e) {
        LOG.warn("cleanup of {} failed", s.entry().idstr(), e);
      }
    }
    live.clear();
  }

  /**
   * One iteration: a PART section per active live handler, in order, stopping at the first that
   * still has data pending or when rate limited (as QEMU does).
   *
   * @return true when every handler reported nothing pending
   */
  public boolean iterateLive(BooleanSupplier rateLimited) throws IOException {
    boolean allDone = true;
    for (Session s : live) {
      SaveStateRegistry.Live l = s.entry();
      if (rateLimited.getAsBoolean()) {
        return false;
      }
      writer.beginSection(SectionType.PART, l.sectionId());
      boolean done = s.save().iterate(writer.output(), rateLimited);
      writer.endSection(l.sectionId());
      if (!done) {
        allDone = false;
        break;
      }
    }
    writer.flush();
    return allDone;
  }

  /** END sections of every active live handler (machine stopped, no rate limit). */
  public void completeLive() throws IOException {
    completeLive(h -> true);
  }

  /**
   * END sections of the live handlers {@code which} selects: at a postcopy switch those without
   * postcopy support, at the end of postcopy the others.
   */
  public void completeLive(java.util.function.Predicate<LiveStateHandler> which) throws IOException {
    for (Session s : live) {
      if (!which.test(s.entry().handler())) {
        continue;
      }
      writer.beginSection(SectionType.END, s.entry().sectionId());
      s.save().complete(writer.output());
      writer.endSection(s.entry().sectionId());
    }
  }

  /** This save's state of the live handler {@code idstr}, or null (e.g. RAM's postcopy side). */
  public LiveSave liveSave(String idstr) {
    for (Session s : live) {
      if (s.entry().idstr().equals(idstr)) {
        return s.save();
      }
    }
    return null;
  }

  /** Whether every live handler allows the postcopy switch now (see {@link LiveSave#readyForPostcopy}). */
  public boolean readyForPostcopy() {
    for (Session s : live) {
      if (!s.save().readyForPostcopy()) {
        return false;
      }
    }
    return true;
  }

  /** Bytes the live handlers still have to send (estimate, or exact when {@code exact}). */
  public long pendingBytes(boolean exact) {
    long sum = 0;
    for (Session s : live) {
      sum += exact ? s.save().pendingExactBytes() : s.save().pendingEstimateBytes();
    }
    return sum;
  }

  /** FULL sections of every needed device, described into the vmdesc. */
  public void saveDevices() throws IOException {
    saveDevices(writer);
  }

  /**
   * FULL sections of every needed device written through {@code target} (the main stream, or a
   * postcopy package), described into this saver's vmdesc.
   */
  public void saveDevices(StreamWriter target) throws IOException {
    for (SaveStateRegistry.Device d : registry.devices()) {
      SaveStateEntry e = d.entry();
      if (!e.needed()) {
        continue;
      }
      target.beginSection(SectionType.FULL, d.sectionId(), e.idstr(), e.instanceId(), e.saveVersion());
      if (vmdesc.depth() == 0) {
        vmdesc.beginObject().name("page_size").value(StreamHeader.TARGET_PAGE_SIZE);
        vmdesc.name("devices").beginArray();
      }
      vmdesc.beginObject().name("name").value(e.idstr()).name("instance_id").value(e.instanceId());
      e.save(target.output(), vmdesc);
      vmdesc.endObject();
      target.endSection(d.sectionId());
    }
  }

  /** EOF, then the vmdesc when {@code withVmdesc}; flushes. */
  public void finish(boolean withVmdesc) throws IOException {
    writer.writeEof();
    if (withVmdesc) {
      writer.writeVmdesc(vmdescJson());
    }
    writer.flush();
  }

  /** The vmdesc JSON of the devices saved so far. */
  public String vmdescJson() {
    if (vmdesc.depth() == 0) { // no device saved yet
      return "{\"page_size\": " + StreamHeader.TARGET_PAGE_SIZE + ", \"devices\": []}";
    }
    return vmdesc + "]}"; // close the devices array and the object, leaving the writer open
  }

  /**
   * A whole snapshot of a stopped machine: header, configuration, START and END of every live
   * handler, all devices, EOF, vmdesc.
   */
  public static void saveSnapshot(SaveStateRegistry registry, MigrationOutput out, Configuration config)
      throws IOException {
    saveSnapshot(registry, out, config, SaveOptions.NONE);
  }

  /** {@link #saveSnapshot(SaveStateRegistry, MigrationOutput, Configuration)} with {@code options}. */
  public static void saveSnapshot(
      SaveStateRegistry registry, MigrationOutput out, Configuration config, SaveOptions options) throws IOException {
    StateSaver s = new StateSaver(registry, new StreamWriter(out), options);
    try {
      s.begin(config);
      s.setupLive();
      s.completeLive();
      s.saveDevices();
      s.finish(true);
    } finally {
      s.cleanupLive();
    }
  }
}
