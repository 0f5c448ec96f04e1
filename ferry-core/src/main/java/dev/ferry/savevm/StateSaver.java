package dev.ferry.savevm;

import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.StreamHeader;
import dev.ferry.vmstate.QemuJsonWriter;
import java.io.IOException;
import java.util.function.BooleanSupplier;

/**
 * Writes the state of everything in a {@link SaveStateRegistry} in QEMU's phases (savevm.c's
 * qemu_savevm_state_*): header and configuration, live setup (START), live iterations (PART), live
 * completion (END), device state (FULL), EOF and the vmdesc describing every FULL section.
 */
public final class StateSaver {
  private final SaveStateRegistry registry;
  private final StreamWriter writer;
  private final QemuJsonWriter vmdesc = new QemuJsonWriter();

  public StateSaver(SaveStateRegistry registry, StreamWriter writer) {
    this.registry = registry;
    this.writer = writer;
  }

  public StreamWriter writer() {
    return writer;
  }

  /** Header, then the configuration section unless {@code config} is null. */
  public void begin(Configuration config) throws IOException {
    writer.writeHeader();
    if (config != null) {
      writer.writeConfiguration(config);
    }
  }

  /** START sections of every active live handler. */
  public void setupLive() throws IOException {
    for (SaveStateRegistry.Live l : registry.live()) {
      if (l.handler().active()) {
        writer.beginSection(SectionType.START, l.sectionId(), l.idstr(), l.instanceId(), l.handler().version());
        l.handler().saveSetup(writer.output());
        writer.endSection(l.sectionId());
      }
    }
    writer.flush();
  }

  /**
   * One iteration: a PART section per active live handler, in order, stopping at the first that
   * still has data pending or when rate limited (as QEMU does).
   *
   * @return true when every handler reported nothing pending
   */
  public boolean iterateLive(BooleanSupplier rateLimited) throws IOException {
    boolean allDone = true;
    for (SaveStateRegistry.Live l : registry.live()) {
      if (!l.handler().active()) {
        continue;
      }
      if (rateLimited.getAsBoolean()) {
        return false;
      }
      writer.beginSection(SectionType.PART, l.sectionId());
      boolean done = l.handler().saveIterate(writer.output(), rateLimited);
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
   * END sections of the active live handlers {@code which} selects: at a postcopy switch those
   * without postcopy support, at the end of postcopy the others.
   */
  public void completeLive(java.util.function.Predicate<LiveStateHandler> which) throws IOException {
    for (SaveStateRegistry.Live l : registry.live()) {
      if (l.handler().active() && which.test(l.handler())) {
        writer.beginSection(SectionType.END, l.sectionId());
        l.handler().saveComplete(writer.output());
        writer.endSection(l.sectionId());
      }
    }
  }

  /** Bytes the live handlers still have to send (estimate, or exact when {@code exact}). */
  public long pendingBytes(boolean exact) {
    long sum = 0;
    for (SaveStateRegistry.Live l : registry.live()) {
      if (l.handler().active()) {
        sum += exact ? l.handler().pendingExactBytes() : l.handler().pendingEstimateBytes();
      }
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
    StateSaver s = new StateSaver(registry, new StreamWriter(out));
    try {
      s.begin(config);
      s.setupLive();
      s.completeLive();
      s.saveDevices();
      s.finish(true);
    } finally {
      for (SaveStateRegistry.Live l : registry.live()) {
        l.handler().saveCleanup();
      }
    }
  }
}
