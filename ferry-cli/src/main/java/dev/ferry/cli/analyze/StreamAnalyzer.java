package dev.ferry.cli.analyze;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.ram.MappedRamLayout;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamLoadStats;
import dev.ferry.ram.RamLoader;
import dev.ferry.ram.ReceivedPages;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SectionHeader;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamHandler;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Decodes a whole stream for {@code ferry analyze}: the framing through {@link StreamReader}, RAM
 * through {@link RamLoader} (into blocks it creates as the stream announces them, XBZRLE deltas
 * applied across iterations), device sections through their vmdesc entry ({@link VmsdDecoder}), and
 * without a vmdesc, device sections by their footer. It collects QEMU analyzer's {@code --dump
 * state} object, a listing of every record with its offset, RAM statistics and the commands seen.
 *
 * <p>Not thread-safe; one stream per instance. {@link #close()} frees the RAM blocks.
 */
public final class StreamAnalyzer implements StreamHandler, AutoCloseable {
  /** One line of the listing: a section, a command, EOF, the vmdesc. */
  public record Entry(long offset, long length, String kind, String text) {}

  /** A host page placed by a postcopy RAM record (after POSTCOPY_RUN). */
  public record PostcopyPage(String block, long offset, int length) {}

  /** What a PACKAGED blob held: its device sections and commands, in order. */
  public record Package(long offset, long length, List<String> sections, List<String> commands) {}

  /** Where a postcopy stream stops without EOF (a cut connection), or null. */
  public record Cut(long offset, String message) {}

  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private final JsonNode vmdesc;
  private long streamLength;
  private final boolean footers;
  private final VmsdDecoder decoder;
  private final Map<String, JsonNode> devices = new HashMap<>();
  private final RamBlockResolver.Allocating blocks;
  private final Map<String, Long> sectionSizes = new LinkedHashMap<>();
  private final ObjectNode state = NODES.objectNode();
  private final Map<Long, String> stateKeys = new HashMap<>();
  private final List<Entry> entries = new ArrayList<>();
  private final List<StreamCommand> commands = new ArrayList<>();
  private MultifdChannels multifd;
  private RamLoadOptions ramOptions;
  /** mapped-ram blocks listed so far. */
  private int mappedRamListed;
  private RamLoader ram;
  private Configuration configuration;
  private long vmdescOffset = -1;
  private long eofOffset = -1;
  // postcopy: the package being walked, discards per block, pages after RUN, a cut after RUN
  private Package openPackage;
  private final List<Package> packages = new ArrayList<>();
  private final Map<String, List<StreamCommand.Range>> discards = new LinkedHashMap<>();
  private boolean postcopyRunning;
  private final List<PostcopyPage> postcopyPages = new ArrayList<>();
  private long postcopySections;
  private long lastRecordEnd;
  private Cut cut;
  /** The reader of the connection walked last (a recovery connection continues its sections). */
  private StreamReader reader;
  /** The connection being walked (a command's end is its position when the command is reported). */
  private MigrationInput current;
  /** Where the recovery connection's records start in {@link #entries}, or -1. */
  private int recoveryFromEntry = -1;
  private int recoveryFromCommand;
  private int recoveryFromPage;
  private long recoveryFromSection;
  private long recoveryFromDuplicates;
  private Cut firstCut;
  // block migration: each device's image as the stream carries it (whole 1 MiB chunks), in temp files
  private final long maxDiskBytes;
  private final Map<String, Disk> disks = new LinkedHashMap<>();
  private java.nio.file.Path diskDir;
  private java.nio.ByteBuffer blockBuffer;
  /** One chunk of zeros, written for every ZERO_BLOCK chunk (read through duplicates). */
  private java.nio.ByteBuffer zeroChunk;

  /** One device of the block section: its image so far, and what the stream sent for it. */
  public static final class Disk {
    private final String name;
    private final java.nio.file.Path file;
    private final java.nio.channels.FileChannel channel;
    private long extentBytes;
    private long dataChunks;
    private long zeroChunks;

    Disk(String name, java.nio.file.Path file) throws IOException {
      this.name = name;
      this.file = file;
      this.channel = java.nio.channels.FileChannel.open(
          file, java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.READ,
          java.nio.file.StandardOpenOption.WRITE);
    }

    public String name() {
      return name;
    }

    /** The image: every chunk the stream sent (data, or zeros for ZERO_BLOCK), up to the last chunk's end. */
    public java.nio.file.Path file() {
      return file;
    }

    public long extentBytes() {
      return extentBytes;
    }

    public long dataChunks() {
      return dataChunks;
    }

    public long zeroChunks() {
      return zeroChunks;
    }
  }

  /**
   * @param vmdesc the parsed vmdesc, or null (device sections are then skipped by their footer)
   * @param streamLength bytes in the stream, to bound what the vmdesc asks to read
   * @param footers whether sections end with footers (needed to skip sections without a vmdesc)
   * @param maxRamBytes cap on all RAM blocks together
   */
  public StreamAnalyzer(JsonNode vmdesc, long streamLength, boolean footers, long maxRamBytes) {
    this.vmdesc = vmdesc;
    this.streamLength = streamLength;
    this.footers = footers;
    this.decoder = new VmsdDecoder(streamLength);
    this.ramOptions = RamLoadOptions.defaults().withMaxTotalBytes(maxRamBytes);
    this.maxDiskBytes = maxRamBytes;
    RamBlockResolver.Allocating inner = new RamBlockResolver.Allocating(maxRamBytes);
    this.blocks = inner;
    if (vmdesc != null) {
      for (JsonNode d : vmdesc.path("devices")) {
        devices.put(key(d.path("name").asText(), d.path("instance_id").asLong()), d);
      }
    }
  }

  private static String key(String idstr, long instance) {
    return idstr + "\u0000" + instance;
  }

  /**
   * RAM records are read and checked but their page contents are not stored (the listing and the
   * dumps need the records, only {@code --extract} needs the RAM): the blocks stay untouched, so
   * the analysis of a large stream costs neither the guest's RAM nor the time to write it. Call
   * before {@link #analyze}.
   */
  public void discardPageData() {
    ramOptions = ramOptions.withPageDataDiscarded(true);
    // blocks without memory, unless multifd channels are replayed (they store their pages)
    blocks.factory((name, usedLength, recordOffset) ->
        multifd == null ? RamBlock.unbacked(name, usedLength) : RamBlock.allocate(name, usedLength));
  }

  /**
   * RAM blocks become shared mappings of files under {@code dir} ({@code --extract}: block {@code
   * /a/b} is {@code dir/a/b}), so the pages go to the output files as they are loaded; {@link
   * #dropResidentPages()} keeps them out of the process's memory. The files are {@code NAME.partial}
   * until {@link #finishExtraction} renames them; {@link #close} deletes what it did not rename. A
   * name that makes no file inside {@code dir}, one of extract's own files, the {@code input} file,
   * or a file another block already writes (or a directory of it) is an error at the record that
   * announces it. Call before {@link #analyze}.
   */
  public void extractRamTo(java.nio.file.Path dir, java.nio.file.Path input) {
    extracting = true;
    java.nio.file.Path root = dir.toAbsolutePath().normalize();
    java.nio.file.Path in = input == null ? null : input.toAbsolutePath().normalize();
    // every path a block claims (its file and its .partial file) -> the block's name
    Map<java.nio.file.Path, String> claimed = new LinkedHashMap<>();
    blocks.factory((name, usedLength, recordOffset) -> {
      java.nio.file.Path target = extractPath(root, dir, name, recordOffset);
      java.nio.file.Path partial = target.resolveSibling(target.getFileName() + PARTIAL);
      String first = root.relativize(target).getName(0).toString();
      if (first.equals("desc.json") || first.equals("state.json") || first.matches("disk-.*\\.raw")) {
        throw new MigrationStreamException(
            "RAM block '" + name + "' would be written to " + target + ", a name --extract keeps for its own " + first,
            recordOffset);
      }
      for (java.nio.file.Path p : List.of(target, partial)) {
        if (in != null && (p.equals(in) || java.nio.file.Files.exists(p) && java.nio.file.Files.isSameFile(p, input))) {
          throw new MigrationStreamException(
              "RAM block '" + name + "' would be written to " + p + ", the stream file being analyzed", recordOffset);
        }
        for (Map.Entry<java.nio.file.Path, String> c : claimed.entrySet()) {
          if (p.startsWith(c.getKey()) || c.getKey().startsWith(p)) {
            throw new MigrationStreamException(
                "RAM blocks '" + c.getValue() + "' and '" + name + "' would both be written to " + c.getKey(), recordOffset);
          }
        }
      }
      claimed.put(target, name);
      claimed.put(partial, name);
      java.nio.file.Files.createDirectories(target.getParent());
      RamBlock b = RamBlock.mapFile(name, usedLength, partial);
      extractFiles.add(new ExtractFile(b, partial, target));
      return b;
    });
  }

  /** Suffix of an output file while the stream is read ({@link #extractRamTo}). */
  static final String PARTIAL = ".partial";

  /** A block's output file, at {@code partial} until {@link #finishExtraction} renames it to {@code target}. */
  private record ExtractFile(RamBlock block, java.nio.file.Path partial, java.nio.file.Path target) {}

  /** The output files not renamed yet (deleted by {@link #close}). */
  private final List<ExtractFile> extractFiles = new ArrayList<>();

  /**
   * After a successful walk with {@link #extractRamTo}: writes each block's file back to disk
   * (msync), which reports a write-back error such as a full disk as a one-line IOException naming
   * the block and its file, then renames the files to their final names.
   */
  public void finishExtraction() throws IOException {
    for (ExtractFile f : extractFiles) {
      try {
        f.block().memory().force();
      } catch (java.io.UncheckedIOException | InternalError | IllegalStateException e) {
        Throwable c = e instanceof java.io.UncheckedIOException u ? u.getCause() : e;
        throw new IOException("RAM block '" + f.block().name() + "': writing " + f.partial() + " failed: "
            + (c.getMessage() == null ? c.toString() : c.getMessage()).replace('\n', ' '), e);
      }
    }
    while (!extractFiles.isEmpty()) {
      ExtractFile f = extractFiles.getFirst();
      try {
        java.nio.file.Files.move(f.partial(), f.target(), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      } catch (java.nio.file.AtomicMoveNotSupportedException e) {
        java.nio.file.Files.move(f.partial(), f.target(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
      extractFiles.removeFirst();
    }
  }

  /** Where {@code --extract} writes RAM block {@code name}: inside {@code root}, or an error. */
  static java.nio.file.Path extractPath(java.nio.file.Path root, java.nio.file.Path dir, String name, long recordOffset)
      throws MigrationStreamException {
    String rel = name.replaceFirst("^/+", "");
    java.nio.file.Path target = root.resolve(rel).normalize();
    if (rel.isEmpty() || !target.startsWith(root) || target.equals(root)) {
      throw new MigrationStreamException("RAM block name '" + name + "' does not make a file name inside " + dir, recordOffset);
    }
    return target;
  }

  /** RAM blocks are mappings of the output files ({@link #extractRamTo}). */
  private boolean extracting;

  /** Pages stored since the last {@link #dropResidentPages}, counted when it is called. */
  private long pagesAtDrop;

  /**
   * Unmaps the pages written so far from this process (file-mapped blocks only: they stay in the
   * files) once {@code everyPages} pages were stored since the last time; otherwise nothing.
   */
  public void dropResidentPages(long everyPages) {
    RamLoadStats s = ram == null ? null : ram.stats();
    // zero pages store nothing (fresh files read as zeros); an XBZRLE page reads and writes one
    long stored = s == null ? 0 : s.normalPages() + s.xbzrlePages() + s.compressedPages();
    if (stored - pagesAtDrop >= everyPages) {
      pagesAtDrop = stored;
      for (RamBlock b : blocks.blocks()) {
        b.dropResident();
      }
    }
  }

  /** Replays these multifd channels at every RAM EOS (closed with this analyzer). */
  void multifd(MultifdChannels channels) {
    this.multifd = channels;
  }

  /** The multifd channels replayed, or null. */
  MultifdChannels multifd() {
    return multifd;
  }

  /** Walks the whole stream with the given reader options (configuration, footers). */
  public void analyze(MigrationInput in, StreamReader.Options options) throws IOException {
    StreamReader reader = new StreamReader(in, this, options);
    this.reader = reader;
    this.current = in;
    reader.readHeader();
    configuration = reader.readConfiguration();
    if (configuration != null && configuration.capabilities().contains("mapped-ram")) {
      // QEMU 9.0's file layout: each block-list entry is followed by its header, pages are at fixed offsets
      ramOptions = ramOptions.withMappedRam(true);
    }
    if (configuration != null) {
      entries.add(new Entry(8, in.position() - 8, "CONFIG", "machine '" + configuration.machineType() + "'"
          + (configuration.capabilities().isEmpty() ? "" : " capabilities " + configuration.capabilities())));
    }
    lastRecordEnd = in.position();
    if (reader.readSections() == StreamReader.End.POSTCOPY_RUN) {
      postcopyRest(reader);
      return;
    }
    reader.readTail();
  }

  /**
   * The postcopy phase on the same stream: RAM parts, END, EOF (no vmdesc). A real postcopy
   * connection may stop here (paused, killed): listed up to its last whole record.
   */
  private void postcopyRest(StreamReader r) throws IOException {
    try {
      r.readSections();
      r.readTail();
    } catch (MigrationStreamException e) {
      if (!e.getMessage().contains("unexpected end of stream")) {
        throw e;
      }
      long at = Math.min(lastRecordEnd, streamLength);
      cut = new Cut(at, e.getMessage());
      entries.add(new Entry(at, streamLength - at, "CUT",
          "the stream ends in postcopy without EOF (a cut connection): " + e.getMessage()));
    }
  }

  /**
   * Walks a postcopy recovery connection (QEMU 7.2: no header or configuration; RECV_BITMAP per
   * block, POSTCOPY_RESUME, then RAM sections opened by the first connection, to EOF) after the
   * connection it continues was walked with {@link #analyze} and ended cut in postcopy. Offsets of
   * the new entries are the recovery connection's; a RAM host page half sent on the lost
   * connection is dropped, as the destination drops it.
   */
  public void continueWith(MigrationInput next, long nextLength) throws IOException {
    if (reader == null || !postcopyRunning || cut == null) {
      throw new MigrationStreamException(
          "--continues: the first connection did not end cut in postcopy (after POSTCOPY_RUN, without EOF),"
              + " so no recovery connection continues it");
    }
    firstCut = cut;
    cut = null;
    recoveryFromEntry = entries.size();
    recoveryFromCommand = commands.size();
    recoveryFromPage = postcopyPages.size();
    recoveryFromSection = postcopySections;
    recoveryFromDuplicates = postcopyDuplicates();
    streamLength = nextLength;
    lastRecordEnd = 0;
    eofOffset = -1;
    if (ram != null) {
      ram.resumePostcopy();
    }
    current = next;
    reader = reader.continueOn(next);
    postcopyRest(reader);
  }

  /** Where the first connection was cut, when a recovery connection was walked after it; else null. */
  public Cut firstCut() {
    return firstCut;
  }

  /** The entries of the recovery connection (all entries without one). */
  public List<Entry> recoveryEntries() {
    return recoveryFromEntry < 0 ? entries : entries.subList(recoveryFromEntry, entries.size());
  }

  /** The commands of the recovery connection. */
  public List<StreamCommand> recoveryCommands() {
    return commands.subList(recoveryFromCommand, commands.size());
  }

  /** Host pages the recovery connection placed. */
  public List<PostcopyPage> recoveryPages() {
    return postcopyPages.subList(recoveryFromPage, postcopyPages.size());
  }

  /** RAM sections of the recovery connection. */
  public long recoverySections() {
    return postcopySections - recoveryFromSection;
  }

  /** Pages the recovery connection sent that the first connection had delivered whole. */
  public long recoveryDuplicates() {
    return postcopyDuplicates() - recoveryFromDuplicates;
  }

  @Override
  public void section(SectionHeader h, MigrationInput in) throws IOException {
    long bodyStart = in.position();
    String kind = h.type().name();
    if (h.idstr().equals("ram") && h.instanceId() == 0) {
      if (h.version() != 4) {
        throw new MigrationStreamException("RAM section version " + h.version() + ", expected 4", h.offset());
      }
      if (ram == null) {
        // an extraction's blocks are fresh files, all zeros: a zero page this load did not write is
        // left unread (reading it would map a page of the file into this process). Not with
        // multifd channels, whose pages the loader does not see written.
        ram = new RamLoader(new Recording(), ramOptions.withBlocksStartZeroed(extracting && multifd == null));
      }
      int placedBefore = postcopyPages.size();
      ram.loadChunk(in);
      if (multifd != null && !postcopyRunning) {
        multifd.sync(blocks, in.position() - 8);
      }
      putState(h, ramState()); // one object per section id, whatever the chunk
      if (postcopyRunning) {
        postcopySections++;
        String pages = pages(postcopyPages.subList(placedBefore, postcopyPages.size()));
        entries.add(new Entry(h.offset(), in.position() - h.offset(), kind,
            describe(h) + "  body " + (in.position() - bodyStart) + " bytes, postcopy " + pages));
        lastRecordEnd = in.position() + (footers ? 5 : 0);
        return;
      }
    } else if (h.idstr().equals(dev.ferry.block.BlockDescriptor.IDSTR) && h.instanceId() == 0) {
      if (h.version() != dev.ferry.block.BlockDescriptor.VERSION) {
        throw new MigrationStreamException(
            "block section version " + h.version() + ", expected " + dev.ferry.block.BlockDescriptor.VERSION, h.offset());
      }
      block(h, in, bodyStart);
      return;
    } else if (vmdesc != null) {
      JsonNode d = devices.get(key(h.idstr(), h.instanceId()));
      if (d == null) {
        throw new MigrationStreamException(
            "no vmdesc entry describes this section", h.offset());
      }
      long described = d.path("version").asLong(-1);
      if (described >= 0 && described != h.version()) {
        throw new MigrationStreamException(
            "version mismatch: section version " + h.version() + ", vmdesc version " + described, h.offset());
      }
      putState(h, decoder.readDevice(in, d));
    } else {
      skipToFooter(in, h);
    }
    if (openPackage != null) {
      openPackage.sections().add(describe(h));
    }
    entries.add(new Entry(h.offset(), in.position() - h.offset(), kind,
        indent() + describe(h) + "  body " + (in.position() - bodyStart) + " bytes"));
    if (ram != null && h.idstr().equals("ram")) {
      listMappedRam();
    }
    lastRecordEnd = in.position() + (footers ? 5 : 0);
  }

  /** mapped-ram blocks the last RAM chunk read: one entry each for the header, bitmap and page region. */
  private void listMappedRam() {
    List<MappedRamLayout.BlockInfo> all = ram.mappedRamBlocks();
    for (MappedRamLayout.BlockInfo b : all.subList(mappedRamListed, all.size())) {
      MappedRamLayout.Header hd = b.header();
      long pages = MappedRamLayout.pageCount(b.length());
      entries.add(new Entry(b.headerOffset(), MappedRamLayout.HEADER_LENGTH, "MAPPED-RAM", String.format(
          "  block '%s' length 0x%x: header version %d, page size 0x%x, bitmap at 0x%x (0x%x bytes), pages at 0x%x", b.block(),
          b.length(), hd.version(), hd.pageSize(), hd.bitmapOffset(), MappedRamLayout.bitmapBytes(b.length()), hd.pagesOffset())));
      entries.add(new Entry(hd.pagesOffset(), b.length(), "MAPPED-RAM", String.format(
          "  block '%s' pages: %d of %d present (%d absent: zero)", b.block(), b.pagesPresent(), pages, pages - b.pagesPresent())));
    }
    mappedRamListed = all.size();
  }

  /**
   * A {@code block} section (QEMU's analyzer fails on these): one entry for the section, then one per
   * record (chunk: device, offset, data or zero; progress). Chunks go into the device's image.
   */
  private void block(SectionHeader h, MigrationInput in, long bodyStart) throws IOException {
    if (blockBuffer == null) {
      blockBuffer = java.nio.ByteBuffer.allocateDirect(dev.ferry.block.BlockDescriptor.CHUNK_BYTES);
      zeroChunk = java.nio.ByteBuffer.allocate(dev.ferry.block.BlockDescriptor.CHUNK_BYTES);
    }
    List<Entry> records = new ArrayList<>();
    long[] counts = new long[3];
    dev.ferry.block.BlockReader.readBody(in, new dev.ferry.block.BlockReader.Handler() {
      @Override
      public void progress(int percent, long at) {
        records.add(new Entry(at, 8, "  BLOCK", "progress " + percent + "%"));
        counts[2]++;
      }

      @Override
      public void chunk(String device, long offset, java.nio.ByteBuffer data, long at) throws IOException {
        Disk d = disk(device, at);
        long end = offset + dev.ferry.block.BlockDescriptor.CHUNK_BYTES;
        if (end > maxDiskBytes) {
          throw new MigrationStreamException(String.format(
              "block chunk of '%s' at 0x%x is beyond the analyzer's limit of %d bytes (--max-ram)", device, offset, maxDiskBytes), at);
        }
        long len = 8 + 1 + device.getBytes(java.nio.charset.StandardCharsets.UTF_8).length + (data == null ? 0 : data.remaining());
        if (data == null) {
          d.zeroChunks++;
          counts[1]++;
          // a chunk sent earlier at this offset is overwritten by the zeros
          java.nio.ByteBuffer z = zeroChunk.duplicate();
          while (z.hasRemaining()) {
            d.channel.write(z, offset + z.position());
          }
        } else {
          d.dataChunks++;
          counts[0]++;
          while (data.hasRemaining()) {
            d.channel.write(data, offset + data.position());
          }
        }
        d.extentBytes = Math.max(d.extentBytes, end);
        records.add(new Entry(at, len, "  BLOCK", String.format("chunk '%s' 0x%x %s", device, offset, data == null ? "zero" : "data")));
      }
    }, blockBuffer);
    entries.add(new Entry(h.offset(), in.position() - h.offset(), h.type().name(),
        describe(h) + "  body " + (in.position() - bodyStart) + " bytes, block: " + counts[0] + " data chunks, "
            + counts[1] + " zero chunks, " + counts[2] + " progress"));
    entries.addAll(records);
    lastRecordEnd = in.position() + (footers ? 5 : 0);
  }

  private Disk disk(String device, long at) throws IOException {
    Disk d = disks.get(device);
    if (d == null) {
      if (device.isEmpty() || device.contains("/") || device.equals(".") || device.equals("..") || device.indexOf('\0') >= 0) {
        throw new MigrationStreamException("block device name '" + device + "' does not make a file name", at);
      }
      if (diskDir == null) {
        diskDir = java.nio.file.Files.createTempDirectory("ferry-analyze-disks");
      }
      d = new Disk(device, diskDir.resolve("disk-" + device + ".raw"));
      disks.put(device, d);
    }
    return d;
  }

  /** The devices the block sections carried, in the order they first appeared. */
  public List<Disk> disks() {
    return List.copyOf(disks.values());
  }

  private String indent() {
    return openPackage == null ? "" : "  ";
  }

  /** "3 pages: 'pc.ram' 0x1000 0x5000 ..." (the first 16 listed). */
  private static String pages(List<PostcopyPage> placed) {
    StringBuilder sb = new StringBuilder(placed.size() + (placed.size() == 1 ? " page" : " pages"));
    String block = null;
    int shown = 0;
    for (PostcopyPage p : placed) {
      if (shown++ == 16) {
        sb.append(" ...");
        break;
      }
      if (!p.block().equals(block)) {
        block = p.block();
        sb.append(shown == 1 ? ": '" : "; '").append(block).append("'");
      }
      sb.append(String.format(" 0x%x", p.offset()));
    }
    return sb.toString();
  }

  private static String describe(SectionHeader h) {
    return "'" + h.idstr() + "' instance " + h.instanceId() + " (id " + h.sectionId() + ") v" + h.version();
  }

  private void putState(SectionHeader h, JsonNode value) {
    String k = stateKeys.computeIfAbsent(h.sectionId(), id -> h.idstr() + " (" + id + ")");
    state.set(k, value);
  }

  private ObjectNode ramState() {
    ObjectNode r = NODES.objectNode();
    ObjectNode sizes = r.putObject("section sizes");
    sectionSizes.forEach((name, len) -> sizes.put(name, String.format("0x%016x", len)));
    return r;
  }

  /**
   * Without a vmdesc a device body cannot be parsed; its end is found as the first footer with its
   * id that is followed by something that looks like the next record (within the reader's peek
   * window).
   */
  private void skipToFooter(MigrationInput in, SectionHeader h) throws IOException {
    if (!footers) {
      throw new MigrationStreamException(
          "cannot find the end of " + h.describe() + ": the stream has neither a vmdesc nor section footers",
          h.offset());
    }
    long id = h.sectionId();
    int limit = MigrationInput.BUFFER_SIZE - 16;
    for (int k = 0; k < limit; k++) {
      int b = in.peekU8(k);
      if (b < 0) {
        break;
      }
      if (b != SectionType.FOOTER.code()) {
        continue;
      }
      long got = 0;
      for (int j = 1; j <= 4; j++) {
        got = (got << 8) | Math.max(0, in.peekU8(k + j));
      }
      if (got == id && plausibleNext(in, k + 5)) {
        in.skip(k);
        return;
      }
    }
    throw new MigrationStreamException(
        "cannot find the end of " + h.describe() + " without a vmdesc (no footer within "
            + limit + " bytes)",
        h.offset());
  }

  private static boolean plausibleNext(MigrationInput in, int at) throws IOException {
    int t = in.peekU8(at);
    if (t < 0 || t == SectionType.EOF.code() || t == SectionType.PART.code() || t == SectionType.END.code()) {
      return true;
    }
    if (t == SectionType.START.code() || t == SectionType.FULL.code()) {
      int len = in.peekU8(at + 5);
      int c = in.peekU8(at + 6);
      return len > 0 && c >= 0x20 && c < 0x7F;
    }
    if (t == SectionType.COMMAND.code()) {
      int cmd = (in.peekU8(at + 1) << 8) | in.peekU8(at + 2);
      return cmd > 0 && cmd < dev.ferry.stream.Command.MAX;
    }
    return false;
  }

  @Override
  public void command(StreamCommand command, long offset) throws IOException {
    commands.add(command);
    String indent = indent();
    String text = switch (command) {
      case StreamCommand.Ping p -> "PING " + p.value();
      case StreamCommand.PostcopyAdvise a -> a.empty()
          ? "POSTCOPY_ADVISE (dirty bitmaps only)"
          : String.format("POSTCOPY_ADVISE host page sizes 0x%x, target page size 0x%x", a.hostPageSizes(), a.targetPageSize());
      case StreamCommand.RamDiscard d -> {
        discard(d, offset);
        StringBuilder sb = new StringBuilder("POSTCOPY_RAM_DISCARD '" + d.blockName() + "'");
        for (StreamCommand.Range r : d.ranges()) {
          sb.append(String.format(" [0x%x, +0x%x)", r.start(), r.length()));
        }
        yield sb.toString();
      }
      case StreamCommand.Packaged p -> "PACKAGED " + p.length() + " bytes";
      case StreamCommand.RecvBitmap r -> "RECV_BITMAP '" + r.blockName() + "'";
      default -> command.command().name();
    };
    if (command instanceof StreamCommand.PostcopyAdvise a && !a.empty()) {
      ramOptions = ramOptions.withPostcopyAdvised(true);
    }
    if (command instanceof StreamCommand.PostcopyListen && ram != null) {
      ram.enterPostcopy();
    }
    entries.add(new Entry(offset, -1, "COMMAND", indent + text));
    if (openPackage == null && current != null) {
      lastRecordEnd = current.position(); // a cut after this command starts here
    }
    if (openPackage != null) {
      openPackage.commands().add(text);
    }
    if (command instanceof StreamCommand.Packaged p) {
      openPackage = new Package(offset, p.length(), new ArrayList<>(), new ArrayList<>());
    }
    if (command instanceof StreamCommand.PostcopyRun) {
      startPostcopyRam();
    }
  }

  /**
   * After RUN every RAM record is a postcopy page: placed through the loader's postcopy path, which
   * reports each host page and drops (and counts) a page sent twice after RUN.
   */
  private void startPostcopyRam() {
    postcopyRunning = true;
    if (ram == null) {
      return;
    }
    ReceivedPages received = new ReceivedPages(blocks.blocks());
    ram.advise(received);
    ram.enterPostcopy((blockIndex, hostOffset, length) ->
        postcopyPages.add(new PostcopyPage(received.block(blockIndex).name(), hostOffset, length)));
  }

  private void discard(StreamCommand.RamDiscard d, long offset) throws MigrationStreamException {
    discards.computeIfAbsent(d.blockName(), k -> new ArrayList<>()).addAll(d.ranges());
    RamBlock b = blocks.resolve(d.blockName());
    if (b == null) {
      throw new MigrationStreamException("POSTCOPY_RAM_DISCARD names unknown RAM block '" + d.blockName() + "'", offset);
    }
    for (StreamCommand.Range r : d.ranges()) {
      if (r.start() < 0 || r.length() < 0 || r.start() % b.pageSize() != 0 || r.length() % b.pageSize() != 0
          || r.length() > b.usedLength() - r.start()) {
        throw new MigrationStreamException(
            String.format("POSTCOPY_RAM_DISCARD range [0x%x, +0x%x) does not fit block '%s' (length 0x%x, page 0x%x)",
                r.start(), r.length(), b.name(), b.usedLength(), b.pageSize()),
            offset);
      }
      if (!ramOptions.pageDataDiscarded()) {
        b.memory().asSlice(r.start(), r.length()).fill((byte) 0);
      }
    }
  }

  @Override
  public void packagedEnd(long offset) {
    Package p = openPackage;
    openPackage = null;
    if (p != null) {
      packages.add(p);
    }
    entries.add(new Entry(offset, -1, "PACKAGED", "end of package"
        + (p == null ? "" : ": " + p.sections().size() + " device sections, " + p.commands().size() + " commands")));
    lastRecordEnd = offset;
  }

  @Override
  public void eof(long offset) {
    if (openPackage == null) {
      eofOffset = offset;
    }
    entries.add(new Entry(offset, 1, "EOF", indent()));
    lastRecordEnd = offset + 1;
  }

  @Override
  public void vmdesc(String json, long length, long offset) {
    vmdescOffset = offset;
    entries.add(new Entry(offset, 5 + length, "VMDESC", length + " bytes of JSON"));
  }

  /** Offset of the main stream's EOF, or -1. */
  public long eofOffset() {
    return eofOffset;
  }

  /** The PACKAGED blobs in stream order. */
  public List<Package> packages() {
    return packages;
  }

  /** POSTCOPY_RAM_DISCARD ranges per block, in stream order. */
  public Map<String, List<StreamCommand.Range>> discards() {
    return discards;
  }

  /** Whether POSTCOPY_RUN was seen. */
  public boolean postcopyRan() {
    return postcopyRunning;
  }

  /** Host pages placed after POSTCOPY_RUN, in stream order. */
  public List<PostcopyPage> postcopyPages() {
    return postcopyPages;
  }

  /** RAM sections after POSTCOPY_RUN. */
  public long postcopySections() {
    return postcopySections;
  }

  /** Pages sent again after RUN (dropped: postcopy never sends a page twice). */
  public long postcopyDuplicates() {
    return ram == null ? 0 : ram.postcopyDuplicates();
  }

  /** Where a postcopy stream stopped without EOF, or null. */
  public Cut cut() {
    return cut;
  }

  /** QEMU analyzer's {@code --dump state} object. */
  public ObjectNode state() {
    return state;
  }

  public List<Entry> entries() {
    return entries;
  }

  public List<StreamCommand> commands() {
    return commands;
  }

  /** Offset of the vmdesc the walk found after EOF, or -1. */
  public long vmdescOffset() {
    return vmdescOffset;
  }

  public Configuration configuration() {
    return configuration;
  }

  /** RAM blocks in the order the stream announced them. */
  public List<RamBlock> ramBlocks() {
    return blocks.blocks();
  }

  /** Null when the stream had no RAM section. */
  public RamLoadStats ramStats() {
    return ram == null ? null : ram.stats();
  }

  @Override
  public void close() {
    if (multifd != null) {
      multifd.close();
    }
    blocks.close();
    for (ExtractFile f : extractFiles) {
      try {
        java.nio.file.Files.deleteIfExists(f.partial()); // the walk or the extraction failed
      } catch (IOException e) {
        // the error that got here is the one to report
      }
    }
    extractFiles.clear();
    for (Disk d : disks.values()) {
      try {
        d.channel.close();
        java.nio.file.Files.deleteIfExists(d.file);
      } catch (IOException e) {
        // a temp file left behind is not worth failing the analysis for
      }
    }
    if (diskDir != null) {
      try {
        java.nio.file.Files.deleteIfExists(diskDir);
      } catch (IOException e) {
        // as above
      }
    }
  }

  /** Creates blocks through {@link #blocks} and records the sizes the analyzer shows. */
  private final class Recording implements RamBlockResolver {
    @Override
    public RamBlock resolve(String name) {
      return blocks.resolve(name);
    }

    @Override
    public RamBlock declare(String name, long usedLength, long recordOffset) throws MigrationStreamException {
      RamBlock b = blocks.declare(name, usedLength, recordOffset);
      sectionSizes.put(name, usedLength);
      return b;
    }
  }
}
