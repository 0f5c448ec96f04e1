package dev.ferry.savevm;

import dev.ferry.stream.Command;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Writes the framing of a QEMU 7.2 stream; the mirror of {@link StreamReader}. Section bodies are
 * written by the caller between {@link #beginSection} and {@link #endSection}.
 */
public final class StreamWriter {
  private final MigrationOutput out;
  private final boolean footers;

  /**
   * @param footers whether sections end with a footer (QEMU's send-section-footer; false only for
   *     legacy machine types)
   */
  public StreamWriter(MigrationOutput out, boolean footers) {
    this.out = out;
    this.footers = footers;
  }

  public StreamWriter(MigrationOutput out) {
    this(out, true);
  }

  public MigrationOutput output() {
    return out;
  }

  public void writeHeader() throws IOException {
    out.writeBe32(StreamHeader.MAGIC).writeBe32(StreamHeader.VERSION);
  }

  public void writeConfiguration(Configuration c) throws IOException {
    byte[] name = c.machineType().getBytes(StandardCharsets.ISO_8859_1);
    out.writeU8(SectionType.CONFIGURATION.code()).writeBe32(name.length).writeBytes(name);
    if (c.targetPageBits().isPresent()) {
      subsection("configuration/target-page-bits");
      out.writeBe32(c.targetPageBits().getAsInt());
    }
    if (!c.capabilities().isEmpty()) {
      subsection("configuration/capabilities");
      out.writeBe32(c.capabilities().size());
      for (String cap : c.capabilities()) {
        out.writeCountedString(cap);
      }
    }
    if (c.uuid() != null) {
      subsection("configuration/uuid");
      out.writeBytes(c.uuid());
    }
  }

  private void subsection(String name) throws IOException {
    out.writeU8(SectionType.SUBSECTION.code()).writeCountedString(name).writeBe32(1);
  }

  /** A START or FULL header. */
  public void beginSection(SectionType type, long sectionId, String idstr, long instanceId, long version)
      throws IOException {
    if (type != SectionType.START && type != SectionType.FULL) {
      throw new IllegalArgumentException("full header only for START and FULL, not " + type);
    }
    out.writeU8(type.code()).writeBe32(sectionId).writeCountedString(idstr).writeBe32(instanceId).writeBe32(version);
  }

  /** A PART or END header. */
  public void beginSection(SectionType type, long sectionId) throws IOException {
    if (type != SectionType.PART && type != SectionType.END) {
      throw new IllegalArgumentException("short header only for PART and END, not " + type);
    }
    out.writeU8(type.code()).writeBe32(sectionId);
  }

  /** The footer of section {@code sectionId} (nothing when footers are off). */
  public void endSection(long sectionId) throws IOException {
    if (footers) {
      out.writeU8(SectionType.FOOTER.code()).writeBe32(sectionId);
    }
  }

  /** A command record; flushed at once, as QEMU does. PACKAGED goes through {@link #writePackaged}. */
  public void writeCommand(StreamCommand c) throws IOException {
    switch (c) {
      case StreamCommand.OpenReturnPath x -> header(Command.OPEN_RETURN_PATH, 0);
      case StreamCommand.Ping p -> {
        header(Command.PING, 4);
        out.writeBe32(p.value());
      }
      case StreamCommand.PostcopyAdvise a -> {
        if (a.empty()) {
          header(Command.POSTCOPY_ADVISE, 0);
        } else {
          header(Command.POSTCOPY_ADVISE, 16);
          out.writeBe64(a.hostPageSizes()).writeBe64(a.targetPageSize());
        }
      }
      case StreamCommand.PostcopyListen x -> header(Command.POSTCOPY_LISTEN, 0);
      case StreamCommand.PostcopyRun x -> header(Command.POSTCOPY_RUN, 0);
      case StreamCommand.RamDiscard d -> {
        if (d.ranges().isEmpty() || d.ranges().size() > StreamCommand.RamDiscard.MAX_RANGES) {
          throw new IllegalArgumentException("a discard command carries 1..12 ranges, not " + d.ranges().size());
        }
        byte[] name = d.blockName().getBytes(StandardCharsets.ISO_8859_1);
        header(Command.POSTCOPY_RAM_DISCARD, 3 + name.length + 16 * d.ranges().size());
        out.writeU8(0).writeU8(name.length).writeBytes(name).writeU8(0);
        for (StreamCommand.Range r : d.ranges()) {
          out.writeBe64(r.start()).writeBe64(r.length());
        }
      }
      case StreamCommand.Packaged p ->
          throw new IllegalArgumentException("use writePackaged for PACKAGED");
      case StreamCommand.EnableColo x -> header(Command.ENABLE_COLO, 0);
      case StreamCommand.PostcopyResume x -> header(Command.POSTCOPY_RESUME, 0);
      case StreamCommand.RecvBitmap r -> {
        byte[] name = r.blockName().getBytes(StandardCharsets.ISO_8859_1);
        header(Command.RECV_BITMAP, 1 + name.length);
        out.writeU8(name.length).writeBytes(name);
      }
    }
    out.flush();
  }

  private void header(Command c, int len) throws IOException {
    out.writeU8(SectionType.COMMAND.code()).writeBe16(c.code()).writeBe16(len);
  }

  /** PACKAGED: the command, then the blob (a nested stream without header). */
  public void writePackaged(byte[] blob) throws IOException {
    if (blob.length > Command.MAX_PACKAGED_LENGTH) {
      throw new IllegalArgumentException("package of " + blob.length + " bytes exceeds " + Command.MAX_PACKAGED_LENGTH);
    }
    header(Command.PACKAGED, 4);
    out.writeBe32(blob.length);
    out.writeBytes(blob);
    out.flush();
  }

  public void writeEof() throws IOException {
    out.writeU8(SectionType.EOF.code());
  }

  /**
   * The vmdesc after EOF. QEMU 7.2's analyzer finds the JSON by searching backwards for the last
   * NUL byte and then the first '{'; a length whose bytes contain 0x7B after its last zero byte
   * defeats that search, so such a length is avoided by appending spaces (JSON whitespace).
   */
  public void writeVmdesc(String json) throws IOException {
    StringBuilder text = new StringBuilder(json);
    while (lengthConfusesAnalyzer(text.length())) {
      text.append(' ');
    }
    byte[] b = text.toString().getBytes(StandardCharsets.US_ASCII);
    out.writeU8(SectionType.VMDESCRIPTION.code()).writeBe32(b.length).writeBytes(b);
  }

  /** True when a 7.2 analyzer would mis-locate JSON preceded by this be32 length (see above). */
  static boolean lengthConfusesAnalyzer(int len) {
    byte[] be = {(byte) (len >>> 24), (byte) (len >>> 16), (byte) (len >>> 8), (byte) len};
    int lastZero = -1;
    for (int i = 0; i < 4; i++) {
      if (be[i] == 0) {
        lastZero = i;
      }
    }
    for (int i = lastZero + 1; i < 4; i++) {
      if (be[i] == '{') {
        return true;
      }
    }
    return false;
  }

  public void flush() throws IOException {
    out.flush();
  }
}
