package dev.ferry.savevm;

import dev.ferry.stream.Command;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import dev.ferry.stream.StreamHeader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * Walks the framing of a QEMU 7.2 stream (QEMU's qemu_loadvm_state and its section loop) and
 * reports it to a {@link StreamHandler}: header, configuration, START/PART/END/FULL sections with
 * their footers, every 7.2 COMMAND parsed and length-checked (PACKAGED blobs are walked as nested
 * streams), EOF, and the vmdesc after EOF.
 *
 * <p>Stricter than QEMU where QEMU is lax: PART/END only for ids opened by START; the footer after
 * every section; commands' lengths; every length bounded before anything is allocated. Every error
 * is a {@link MigrationStreamException} naming the section and the stream offset.
 *
 * <p>Composable for the postcopy destination: {@link #readSections()} returns at POSTCOPY_RUN, and a
 * listen thread calls it again on the same reader to continue with the rest of the stream.
 */
public final class StreamReader {
  /**
   * @param expectConfiguration whether a configuration section must follow the header (QEMU
   *     property send-configuration; false for legacy machine types)
   * @param expectFooters whether every section ends with a footer (send-section-footer)
   * @param keepVmdesc hand the vmdesc JSON text to the handler (analysis) instead of skipping it
   * @param maxVmdescBytes largest vmdesc accepted
   * @param maxPackagedBytes largest PACKAGED blob accepted
   */
  public record Options(
      boolean expectConfiguration,
      boolean expectFooters,
      boolean keepVmdesc,
      long maxVmdescBytes,
      long maxPackagedBytes) {
    public static final Options DEFAULT =
        new Options(true, true, false, 64L << 20, Command.MAX_PACKAGED_LENGTH);

    /** Options for QEMU's legacy machine types: no configuration, no footers. */
    public static final Options LEGACY = DEFAULT.withConfiguration(false).withFooters(false);

    public Options withConfiguration(boolean on) {
      return new Options(on, expectFooters, keepVmdesc, maxVmdescBytes, maxPackagedBytes);
    }

    public Options withFooters(boolean on) {
      return new Options(expectConfiguration, on, keepVmdesc, maxVmdescBytes, maxPackagedBytes);
    }

    public Options withKeepVmdesc(boolean on) {
      return new Options(expectConfiguration, expectFooters, on, maxVmdescBytes, maxPackagedBytes);
    }
  }

  /** How {@link #readSections()} ended. */
  public enum End {
    /** The EOF byte. */
    EOF,
    /** POSTCOPY_RUN (directly or inside a package): the destination starts the machine now. */
    POSTCOPY_RUN
  }

  private final MigrationInput in;
  private final StreamHandler handler;
  private final Options options;
  /** Sections opened by START, by stream section id. */
  private final Map<Long, SectionHeader> started = new HashMap<>();

  public StreamReader(MigrationInput in, StreamHandler handler, Options options) {
    this.in = in;
    this.handler = handler;
    this.options = options;
  }

  public StreamReader(MigrationInput in, StreamHandler handler) {
    this(in, handler, Options.DEFAULT);
  }

  public MigrationInput input() {
    return in;
  }

  /** Reads header, configuration, all sections, and (after EOF) the vmdesc. */
  public End readAll() throws IOException {
    readHeader();
    readConfiguration();
    End end = readSections();
    if (end == End.EOF) {
      readTail();
    }
    return end;
  }

  /** Magic and version. */
  public void readHeader() throws IOException {
    long at = in.position();
    int magic = in.readBe32();
    if (magic != StreamHeader.MAGIC) {
      throw fail(
          String.format(
              "not a migration stream: magic 0x%08X, expected 0x%08X ('QEVM')", magic, StreamHeader.MAGIC),
          at);
    }
    int version = in.readBe32();
    if (version == StreamHeader.OBSOLETE_VERSION) {
      throw fail("stream format version 2 is obsolete (expected 3)", at + 4);
    }
    if (version != StreamHeader.VERSION) {
      throw fail("unsupported stream format version " + Integer.toUnsignedString(version) + " (expected 3)", at + 4);
    }
  }

  /** The configuration section, when {@link Options#expectConfiguration()}; a no-op otherwise. */
  public Configuration readConfiguration() throws IOException {
    if (!options.expectConfiguration()) {
      return null;
    }
    long at = in.position();
    int type = in.readU8();
    if (type != SectionType.CONFIGURATION.code()) {
      throw fail(String.format("configuration section missing: found type byte 0x%02x", type), at);
    }
    long len = in.readBe32Unsigned();
    if (len == 0 || len > Configuration.MAX_MACHINE_TYPE_LENGTH) {
      throw fail("configuration: machine type length " + len + " out of range 1.." + Configuration.MAX_MACHINE_TYPE_LENGTH, at + 1);
    }
    String machine = new String(in.readBytes((int) len), StandardCharsets.ISO_8859_1);
    OptionalInt pageBits = OptionalInt.empty();
    List<String> caps = new ArrayList<>();
    byte[] uuid = null;
    while (in.peekU8(0) == SectionType.SUBSECTION.code()) {
      long subAt = in.position();
      in.readU8();
      String name = in.readCountedString();
      long version = in.readBe32Unsigned();
      if (version != 1) {
        throw fail("configuration subsection '" + name + "' version " + version + " is not 1", subAt);
      }
      switch (name) {
        case "configuration/target-page-bits" -> pageBits = OptionalInt.of(in.readBe32());
        case "configuration/capabilities" -> {
          long n = in.readBe32Unsigned();
          if (n > Configuration.MAX_CAPABILITIES) {
            throw fail("configuration: capability count " + n + " exceeds " + Configuration.MAX_CAPABILITIES, subAt);
          }
          for (long i = 0; i < n; i++) {
            caps.add(in.readCountedString());
          }
        }
        case "configuration/uuid" -> uuid = in.readBytes(16);
        default -> throw fail("configuration: unknown subsection '" + name + "'", subAt);
      }
    }
    Configuration config = new Configuration(machine, pageBits, caps, uuid);
    try {
      handler.configuration(config, at);
    } catch (MigrationStreamException e) {
      throw sticky(in, e.inSection("configuration", 0).atOffset(at));
    }
    return config;
  }

  /** Reads records until EOF or POSTCOPY_RUN. */
  public End readSections() throws IOException {
    return loop(in, false);
  }

  private End loop(MigrationInput src, boolean inPackage) throws IOException {
    while (true) {
      long at = src.position();
      if (inPackage && src.atEnd()) {
        throw fail(src, "package ended without EOF or POSTCOPY_RUN", at);
      }
      int code = src.readU8();
      SectionType type = SectionType.fromCodeOrNull(code);
      if (type == null) {
        throw fail(src, String.format("unknown section type 0x%02x", code), at);
      }
      switch (type) {
        case EOF -> {
          handler.eof(at);
          return End.EOF;
        }
        case START, FULL -> {
          long id = src.readBe32Unsigned();
          int len = src.readU8();
          if (len == 0) {
            throw fail(src, "empty section idstr (section id " + id + ")", at);
          }
          String idstr = new String(src.readBytes(len), StandardCharsets.ISO_8859_1);
          long instance = src.readBe32Unsigned();
          long version = src.readBe32Unsigned();
          SectionHeader h = new SectionHeader(type, id, idstr, instance, version, at);
          if (type == SectionType.START) {
            SectionHeader old = started.putIfAbsent(id, h);
            if (old != null) {
              throw fail(src, "section id " + id + " started twice (first as " + old.describe() + ")", at);
            }
          }
          body(src, h);
        }
        case PART, END -> {
          long id = src.readBe32Unsigned();
          SectionHeader opened = started.get(id);
          if (opened == null) {
            throw fail(src, type + " for section id " + id + " that no START opened", at);
          }
          body(
              src,
              new SectionHeader(
                  type, id, opened.idstr(), opened.instanceId(), opened.version(), at));
        }
        case COMMAND -> {
          if (command(src, at)) {
            return End.POSTCOPY_RUN;
          }
        }
        default -> throw fail(src, "section type " + type + String.format(" (0x%02x)", code) + " is not allowed here", at);
      }
    }
  }

  private void body(MigrationInput src, SectionHeader h) throws IOException {
    try {
      handler.section(h, src);
    } catch (MigrationStreamException e) {
      throw sticky(src, e.inSection(h.idstr(), h.instanceId()).atOffset(src.position()));
    } catch (IOException | RuntimeException e) {
      MigrationStreamException w =
          new MigrationStreamException("failed to load: " + e.getMessage(), src.position(), e);
      throw sticky(src, w.inSection(h.idstr(), h.instanceId()));
    }
    if (options.expectFooters()) {
      long at = src.position();
      int marker = src.readU8();
      if (marker != SectionType.FOOTER.code()) {
        MigrationStreamException e =
            new MigrationStreamException(
                String.format("section footer missing: expected 0x7e, found 0x%02x", marker), at);
        throw sticky(src, e.inSection(h.idstr(), h.instanceId()));
      }
      long id = src.readBe32Unsigned();
      if (id != h.sectionId()) {
        MigrationStreamException e =
            new MigrationStreamException(
                "section footer mismatch: expected id=" + h.sectionId() + ", actual=" + id, at);
        throw sticky(src, e.inSection(h.idstr(), h.instanceId()));
      }
    }
  }

  /** Returns true for POSTCOPY_RUN. */
  private boolean command(MigrationInput src, long at) throws IOException {
    int code = src.readBe16();
    int len = src.readBe16();
    Command cmd = Command.fromCodeOrNull(code);
    if (cmd == null) {
      throw fail(src, "unknown command " + code + " (length " + len + ")", at);
    }
    if (cmd.fixedLength() != Command.VARIABLE && cmd.fixedLength() != len) {
      throw fail(src, "command " + cmd + " has length " + len + ", expected " + cmd.fixedLength(), at);
    }
    StreamCommand parsed =
        switch (cmd) {
          case OPEN_RETURN_PATH -> new StreamCommand.OpenReturnPath();
          case PING -> new StreamCommand.Ping(src.readBe32Unsigned());
          case POSTCOPY_ADVISE -> {
            if (len == 0) {
              yield new StreamCommand.PostcopyAdvise(-1, -1);
            }
            if (len != 16) {
              throw fail(src, "command POSTCOPY_ADVISE has length " + len + ", expected 0 or 16", at);
            }
            yield new StreamCommand.PostcopyAdvise(src.readBe64(), src.readBe64());
          }
          case POSTCOPY_LISTEN -> new StreamCommand.PostcopyListen();
          case POSTCOPY_RUN -> new StreamCommand.PostcopyRun();
          case POSTCOPY_RAM_DISCARD -> discard(src, len, at);
          case PACKAGED -> new StreamCommand.Packaged(src.readBe32Unsigned());
          case ENABLE_COLO -> {
            src.skip(len);
            yield new StreamCommand.EnableColo();
          }
          case POSTCOPY_RESUME -> new StreamCommand.PostcopyResume();
          case RECV_BITMAP -> {
            if (len < 2) {
              throw fail(src, "command RECV_BITMAP has length " + len + ", expected at least 2", at);
            }
            int n = src.readU8();
            if (n + 1 != len) {
              throw fail(src, "command RECV_BITMAP: name length " + n + " does not match command length " + len, at);
            }
            yield new StreamCommand.RecvBitmap(new String(src.readBytes(n), StandardCharsets.ISO_8859_1));
          }
        };
    try {
      handler.command(parsed, at);
    } catch (MigrationStreamException e) {
      throw sticky(src, e.atOffset(at));
    }
    if (parsed instanceof StreamCommand.Packaged p) {
      return packaged(src, p.length(), at);
    }
    return parsed instanceof StreamCommand.PostcopyRun;
  }

  private StreamCommand.RamDiscard discard(MigrationInput src, int len, long at) throws IOException {
    if (len < 20) {
      throw fail(src, "command POSTCOPY_RAM_DISCARD has length " + len + ", expected at least 20", at);
    }
    int version = src.readU8();
    if (version != 0) {
      throw fail(src, "command POSTCOPY_RAM_DISCARD version " + version + ", expected 0", at);
    }
    int n = src.readU8();
    if (n == 0) {
      throw fail(src, "command POSTCOPY_RAM_DISCARD with an empty block name", at);
    }
    if (3 + n > len) {
      throw fail(src, "command POSTCOPY_RAM_DISCARD: name length " + n + " exceeds command length " + len, at);
    }
    String name = new String(src.readBytes(n), StandardCharsets.ISO_8859_1);
    int term = src.readU8();
    if (term != 0) {
      throw fail(src, String.format("command POSTCOPY_RAM_DISCARD: block name terminator 0x%02x, expected 0", term), at);
    }
    int rest = len - 3 - n;
    if (rest % 16 != 0) {
      throw fail(src, "command POSTCOPY_RAM_DISCARD: " + rest + " range bytes are not a multiple of 16", at);
    }
    List<StreamCommand.Range> ranges = new ArrayList<>(rest / 16);
    for (int i = 0; i < rest / 16; i++) {
      ranges.add(new StreamCommand.Range(src.readBe64(), src.readBe64()));
    }
    return new StreamCommand.RamDiscard(name, ranges);
  }

  private boolean packaged(MigrationInput src, long length, long at) throws IOException {
    if (length > options.maxPackagedBytes()) {
      throw fail(src, "PACKAGED length " + length + " exceeds the limit of " + options.maxPackagedBytes() + " bytes", at);
    }
    long start = src.position();
    // Read in chunks so that a hostile length costs only what the stream really holds.
    ByteArrayOutputStream blob = new ByteArrayOutputStream((int) Math.min(length, 1 << 20));
    byte[] chunk = new byte[(int) Math.min(length, 1 << 20)];
    long left = length;
    try {
      while (left > 0) {
        int k = (int) Math.min(left, chunk.length);
        src.readFully(chunk, 0, k);
        blob.write(chunk, 0, k);
        left -= k;
      }
    } catch (dev.ferry.stream.TruncatedStreamException e) {
      // name the command whose length was wrong (or whose connection broke), not only the read
      throw fail(src, "PACKAGED of " + length + " bytes is longer than the rest of the stream: " + e.what(), at);
    }
    MigrationInput inner = MigrationInput.of(blob.toByteArray(), start);
    End end = loop(inner, true);
    handler.packagedEnd(src.position());
    return end == End.POSTCOPY_RUN;
  }

  /**
   * After EOF: the optional vmdesc (0x06, be32 length, JSON). Accepts the end of the stream too;
   * anything else is an error.
   */
  public void readTail() throws IOException {
    long at = in.position();
    int next = in.peekU8(0);
    if (next < 0) {
      return;
    }
    if (next != SectionType.VMDESCRIPTION.code()) {
      throw fail(String.format("unexpected byte 0x%02x after EOF (expected the vmdesc 0x06 or the end)", next), at);
    }
    in.readU8();
    long len = in.readBe32Unsigned();
    if (len > options.maxVmdescBytes()) {
      throw fail("vmdesc length " + len + " exceeds the limit of " + options.maxVmdescBytes() + " bytes", at);
    }
    if (options.keepVmdesc()) {
      ByteArrayOutputStream json = new ByteArrayOutputStream((int) Math.min(len, 1 << 20));
      byte[] chunk = new byte[(int) Math.min(Math.max(len, 1), 1 << 16)];
      long left = len;
      while (left > 0) {
        int k = (int) Math.min(left, chunk.length);
        in.readFully(chunk, 0, k);
        json.write(chunk, 0, k);
        left -= k;
      }
      handler.vmdesc(json.toString(StandardCharsets.UTF_8), len, at);
    } else {
      in.skip(len);
      handler.vmdesc(null, len, at);
    }
  }

  /** Records {@code e} as the stream's error (if it is the first) and returns it for throwing. */
  private static MigrationStreamException sticky(MigrationInput src, MigrationStreamException e) {
    src.fail(e);
    return e;
  }

  private MigrationStreamException fail(String what, long at) {
    return fail(in, what, at);
  }

  private static MigrationStreamException fail(MigrationInput src, String what, long at) {
    MigrationStreamException e = new MigrationStreamException(what, at);
    src.fail(e);
    return e;
  }
}
