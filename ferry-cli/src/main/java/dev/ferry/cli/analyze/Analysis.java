package dev.ferry.cli.analyze;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.qmp.JsonTrees;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamLoadStats;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * What {@code ferry analyze} does, apart from option parsing: open the file (gunzipping it into a
 * temporary file when it starts with 1F 8B), find the vmdesc at its tail, walk the stream with a
 * {@link StreamAnalyzer}, and print or extract the result.
 *
 * <p>Whether the stream has a configuration section is read from the byte after the header. Whether
 * it has section footers cannot be seen up front: the walk assumes footers, and when that fails on
 * a footer it walks again without them and keeps whichever error came first if both fail.
 */
public final class Analysis {
  /** Largest stream a gzip file may expand to (a guard against gzip bombs filling the disk). */
  static final long MAX_GUNZIPPED_BYTES = 64L << 30;

  /** The vmdesc's parser; the tree is built by {@link JsonTrees}, without an ObjectMapper's set-up. */
  private static final JsonFactory JSON = new JsonFactory();

  private Analysis() {}

  /** Runs the analysis of {@code file}: {@code dump} is null, "state" or "desc". */
  public static void run(Path file, String dump, Path extractDir, long maxRamBytes, PrintWriter out)
      throws IOException {
    run(file, dump, extractDir, maxRamBytes, null, out);
  }

  /** As above; {@code returnPath} (raw or gzip, or null) is decoded and listed after the stream. */
  public static void run(Path file, String dump, Path extractDir, long maxRamBytes, Path returnPath, PrintWriter out)
      throws IOException {
    run(file, dump, extractDir, maxRamBytes, returnPath, List.of(), null, out);
  }

  /**
   * As above; {@code multifdChannels} (raw or gzip connection files of QEMU 7.2 multifd channels, in
   * any order) are replayed against the main stream at its RAM EOS records and listed after it.
   */
  public static void run(
      Path file, String dump, Path extractDir, long maxRamBytes, Path returnPath, List<Path> multifdChannels,
      PrintWriter out) throws IOException {
    run(file, dump, extractDir, maxRamBytes, returnPath, multifdChannels, null, out);
  }

  /**
   * As above; with {@code continues}, {@code file} is a postcopy recovery connection (no header)
   * that continues the connection in {@code continues}, which is walked first.
   */
  public static void run(
      Path file, String dump, Path extractDir, long maxRamBytes, Path returnPath, List<Path> multifdChannels,
      Path continues, PrintWriter out) throws IOException {
    List<ReturnPathDecoder.Message> rp = returnPath == null ? null : ReturnPathDecoder.decode(readSmall(returnPath));
    Path temp = null;
    Path firstTemp = null;
    try {
      temp = gunzippedCopy(file);
      Path stream = temp != null ? temp : file;
      if (continues != null) {
        if (dump != null || extractDir != null || !multifdChannels.isEmpty()) {
          throw new IllegalArgumentException(
              "--continues lists a recovery connection; it does not go with --dump, --extract or --multifd-channel");
        }
        firstTemp = gunzippedCopy(continues);
        Path first = firstTemp != null ? firstTemp : continues;
        try (FileChannel ch1 = FileChannel.open(first, StandardOpenOption.READ);
            FileChannel ch = FileChannel.open(stream, StandardOpenOption.READ)) {
          analyzeRecovery(file, ch, continues, ch1, maxRamBytes, out);
        }
      } else {
        try (FileChannel ch = FileChannel.open(stream, StandardOpenOption.READ)) {
          analyze(file, ch, dump, extractDir, maxRamBytes, multifdChannels, out);
        }
      }
      if (rp != null && dump == null && extractDir == null) {
        out.printf("return path %s: %d messages (%s)%n", returnPath, rp.size(), ReturnPathDecoder.counts(rp));
        for (ReturnPathDecoder.Message m : rp) {
          out.printf("%12d  %-12s %s%n", m.offset(), m.type(), m.text());
        }
      }
    } finally {
      if (temp != null) {
        Files.deleteIfExists(temp);
      }
      if (firstTemp != null) {
        Files.deleteIfExists(firstTemp);
      }
    }
  }

  /** The first connection (with its header) walked quietly, then the recovery connection listed. */
  private static void analyzeRecovery(Path file, FileChannel ch, Path firstFile, FileChannel first, long maxRamBytes, PrintWriter out)
      throws IOException {
    checkHeader(first);
    StreamReader.Options options = StreamReader.Options.DEFAULT.withConfiguration(peekConfiguration(first));
    StreamAnalyzer a = walk(first, null, first.size(), options, maxRamBytes, List.of(), null, null);
    try {
      a.continueWith(new MigrationInput(ch.position(0)), ch.size());
      StreamAnalyzer.Cut at = a.firstCut();
      out.printf("%s: %d bytes, a postcopy recovery connection (no header) continuing %s (cut at offset %d in postcopy)%n",
          file, ch.size(), firstFile, at.offset());
      out.printf("%12s %8s  %-8s %s%n", "offset", "bytes", "record", "");
      for (StreamAnalyzer.Entry e : a.recoveryEntries()) {
        out.printf("%12d %8s  %-8s %s%n", e.offset(), e.length() < 0 ? "" : Long.toString(e.length()), e.kind(), e.text());
      }
      out.printf("commands: %d (%s)%n", a.recoveryCommands().size(), commandCounts(a.recoveryCommands()));
      Map<String, Long> perBlock = new LinkedHashMap<>();
      for (StreamAnalyzer.PostcopyPage pg : a.recoveryPages()) {
        perBlock.merge(pg.block(), 1L, Long::sum);
      }
      StringBuilder sb = new StringBuilder();
      perBlock.forEach((k, n) -> sb.append(sb.isEmpty() ? "" : ", ").append('\'').append(k).append("' ").append(n));
      out.printf("postcopy RAM after recovery: %d pages in %d sections%s, %d already delivered by the lost connection%n",
          a.recoveryPages().size(), a.recoverySections(), sb.isEmpty() ? "" : " (" + sb + ")", a.recoveryDuplicates());
      if (a.cut() != null) {
        out.printf("stream cut at offset %d in postcopy, no EOF%n", a.cut().offset());
      } else if (a.eofOffset() >= 0) {
        out.printf("EOF at %d, no vmdesc%n", a.eofOffset());
      }
    } finally {
      a.close();
    }
  }

  private static String commandCounts(List<StreamCommand> commands) {
    Map<String, Integer> byType = new LinkedHashMap<>();
    for (StreamCommand c : commands) {
      byType.merge(c.command().name(), 1, Integer::sum);
    }
    StringBuilder sb = new StringBuilder();
    byType.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(v));
    return sb.toString();
  }

  private static void analyze(
      Path file, FileChannel ch, String dump, Path extractDir, long maxRamBytes, List<Path> multifdChannels,
      PrintWriter out) throws IOException {
    long length = ch.size();
    VmdescLocator.Found found = VmdescLocator.find(ch);
    JsonNode vmdesc = null;
    if (found != null) {
      try {
        vmdesc = JsonTrees.read(JSON.createParser(found.json()));
      } catch (JsonProcessingException e) {
        throw new MigrationStreamException(
            "vmdesc is not valid JSON: " + e.getOriginalMessage().replace('\n', ' '), found.offset());
      }
      if (!vmdesc.isObject() || !vmdesc.path("devices").isArray()) {
        throw new MigrationStreamException("vmdesc has no 'devices' list", found.offset());
      }
    }
    if ("desc".equals(dump)) {
      // like QEMU's analyzer: check the header, then print the description
      checkHeader(ch);
      if (vmdesc == null) {
        throw new MigrationStreamException("no vmdesc found at the end of " + file);
      }
      out.println(PythonJson.write(vmdesc));
      return;
    }
    if ("state".equals(dump) && vmdesc == null) {
      throw new MigrationStreamException("no vmdesc found at the end of " + file + ": --dump state needs it");
    }
    ByteBuffer head = ByteBuffer.allocate(1);
    if (ch.read(head, 0) == 1 && head.get(0) == SectionType.COMMAND.code()) {
      throw new MigrationStreamException(
          "no stream header: the file starts with a command, as a postcopy recovery connection does;"
              + " give the connection it continues with --continues FILE", 0);
    }
    boolean config = peekConfiguration(ch);
    StreamReader.Options options = StreamReader.Options.DEFAULT.withConfiguration(config);
    StreamAnalyzer a = walk(ch, vmdesc, length, options, maxRamBytes, multifdChannels, extractDir, file);
    try {
      if (a.multifd() != null) {
        a.multifd().finish();
      }
      if (found != null && a.vmdescOffset() >= 0 && a.vmdescOffset() != found.offset()) {
        throw new MigrationStreamException(
            "the stream's vmdesc starts at offset " + a.vmdescOffset() + ", but the tail search found one at "
                + found.offset());
      }
      if (extractDir != null) {
        extract(a, vmdesc, extractDir, out);
      } else if ("state".equals(dump)) {
        out.println(PythonJson.write(a.state()));
      } else {
        list(file, length, a, vmdesc, out);
      }
    } finally {
      a.close();
    }
  }

  /**
   * Walks with footers; on a footer error walks again without them (the channels opened afresh).
   * Page contents are stored only with an {@code extractDir} (--extract), straight into the output
   * files of the RAM blocks.
   */
  private static StreamAnalyzer walk(
      FileChannel ch, JsonNode vmdesc, long length, StreamReader.Options options, long maxRamBytes, List<Path> channels,
      Path extractDir, Path input) throws IOException {
    try {
      return walkOnce(ch, vmdesc, length, options, maxRamBytes, channels, extractDir, input, true);
    } catch (MigrationStreamException first) {
      if (!first.what().startsWith("section footer")) {
        throw first;
      }
      try {
        return walkOnce(ch, vmdesc, length, options, maxRamBytes, channels, extractDir, input, false);
      } catch (MigrationStreamException e) {
        throw first;
      }
    }
  }

  /** One walk, with or without section footers; the analyzer is closed when the walk fails. */
  private static StreamAnalyzer walkOnce(
      FileChannel ch, JsonNode vmdesc, long length, StreamReader.Options options, long maxRamBytes, List<Path> channels,
      Path extractDir, Path input, boolean footers) throws IOException {
    StreamAnalyzer a = analyzer(vmdesc, length, footers, maxRamBytes, extractDir, input);
    try {
      if (!channels.isEmpty()) {
        a.multifd(MultifdChannels.open(channels));
      }
      a.analyze(new MigrationInput(input(ch, a, extractDir)), footers ? options : options.withFooters(false));
      return a;
    } catch (InternalError e) {
      a.close();
      throw pageFault(e, extractDir);
    } catch (MigrationStreamException e) {
      a.close();
      throw e;
    }
  }

  /**
   * The error for an access to a page of a file-mapped block that the file system could not back
   * (the JVM's InternalError for SIGBUS: no space for the page, quota); it rethrows other errors.
   */
  private static IOException pageFault(InternalError e, Path extractDir) {
    if (extractDir == null) {
      throw e;
    }
    return new IOException("--extract " + extractDir + ": a RAM page could not be stored in its output file ("
        + e.getMessage() + "; is the file system full?)", e);
  }

  private static StreamAnalyzer analyzer(
      JsonNode vmdesc, long length, boolean footers, long maxRamBytes, Path extractDir, Path input) {
    StreamAnalyzer a = new StreamAnalyzer(vmdesc, length, footers, maxRamBytes);
    if (extractDir == null) {
      a.discardPageData();
    } else {
      a.extractRamTo(extractDir, input);
    }
    return a;
  }

  /**
   * Pages an extraction stores before it unmaps them ({@link StreamAnalyzer#dropResidentPages}):
   * 8 MiB. Counted in pages, not stream bytes: an XBZRLE record of a hundred bytes touches a page.
   */
  static final long DROP_RESIDENT_EVERY_PAGES = 2048;

  /** The stream's channel from its start; for an extraction, one that drops resident RAM as it goes. */
  private static java.nio.channels.ReadableByteChannel input(FileChannel ch, StreamAnalyzer a, Path extractDir)
      throws IOException {
    ch.position(0);
    return extractDir == null ? ch : new DroppingChannel(ch, a);
  }

  /**
   * Reads the stream file and before each read lets the analyzer unmap the RAM pages it loaded
   * ({@link #DROP_RESIDENT_EVERY_PAGES}; they are in the output files): the process's memory then
   * stays near that much RAM whatever the guest's size. A read takes at most {@link #READ_BYTES}: one
   * of the stream's 256 KiB buffer held 8192 XBZRLE records of a few bytes each, 32 MiB of pages
   * between two checks. Positional reads (mapped-ram) go to the file itself.
   */
  private static final int READ_BYTES = 64 * 1024;

  private static final class DroppingChannel implements java.nio.channels.ReadableByteChannel, dev.ferry.stream.SeekableChannel {
    private final FileChannel file;
    private final StreamAnalyzer analyzer;

    DroppingChannel(FileChannel file, StreamAnalyzer analyzer) {
      this.file = file;
      this.analyzer = analyzer;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      analyzer.dropResidentPages(DROP_RESIDENT_EVERY_PAGES);
      if (dst.remaining() <= READ_BYTES) {
        return file.read(dst);
      }
      int n = file.read(dst.slice(dst.position(), READ_BYTES));
      if (n > 0) {
        dst.position(dst.position() + n);
      }
      return n;
    }

    @Override
    public FileChannel fileChannel() {
      return file;
    }

    @Override
    public boolean isOpen() {
      return file.isOpen();
    }

    @Override
    public void close() throws IOException {
      file.close();
    }
  }

  private static void checkHeader(FileChannel ch) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(8);
    ch.read(b, 0);
    b.flip();
    if (b.remaining() < 8) {
      throw new MigrationStreamException("file too short for a stream header (" + b.remaining() + " bytes)", 0);
    }
    int magic = b.getInt();
    int version = b.getInt();
    if (magic != dev.ferry.stream.StreamHeader.MAGIC) {
      throw new MigrationStreamException(String.format("not a migration stream: magic 0x%08X, expected 0x5145564D ('QEVM')", magic), 0);
    }
    if (version != dev.ferry.stream.StreamHeader.VERSION) {
      throw new MigrationStreamException("unsupported stream format version " + Integer.toUnsignedString(version) + " (expected 3)", 4);
    }
  }

  private static boolean peekConfiguration(FileChannel ch) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(1);
    return ch.read(b, 8) == 1 && b.get(0) == SectionType.CONFIGURATION.code();
  }

  /** A return path file, gunzipped when it starts with 1F 8B; at most 64 MiB. */
  private static byte[] readSmall(Path file) throws IOException {
    long limit = 64L << 20;
    try (InputStream raw = Files.newInputStream(file);
        InputStream in = isGzip(file) ? new GZIPInputStream(raw) : raw) {
      byte[] b = in.readNBytes((int) limit + 1);
      if (b.length > limit) {
        throw new IOException("return path file " + file + " is larger than " + limit + " bytes");
      }
      return b;
    } catch (java.util.zip.ZipException | java.io.EOFException e) {
      throw new IOException("corrupt gzip file " + file + ": " + e.getMessage(), e);
    }
  }

  static boolean isGzip(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return in.read() == 0x1F && in.read() == 0x8B;
    }
  }

  /** A gzip {@code file} gunzipped into a temp file (the caller deletes it), or null when it is no gzip file. */
  private static Path gunzippedCopy(Path file) throws IOException {
    if (!isGzip(file)) {
      return null;
    }
    Path temp = Files.createTempFile("ferry-analyze-", ".mig");
    try {
      gunzip(file, temp);
    } catch (Throwable e) {
      Files.deleteIfExists(temp);
      throw e;
    }
    return temp;
  }

  private static void gunzip(Path from, Path to) throws IOException {
    try (InputStream in = new GZIPInputStream(Files.newInputStream(from), 1 << 16);
        OutputStream out = Files.newOutputStream(to)) {
      byte[] buf = new byte[1 << 16];
      long total = 0;
      int n;
      while ((n = in.read(buf)) > 0) {
        total += n;
        if (total > MAX_GUNZIPPED_BYTES) {
          throw new IOException("gzip input expands beyond " + MAX_GUNZIPPED_BYTES + " bytes");
        }
        out.write(buf, 0, n);
      }
    } catch (java.util.zip.ZipException | java.io.EOFException e) {
      throw new IOException("corrupt gzip file " + from + ": " + e.getMessage(), e);
    }
  }

  private static void extract(StreamAnalyzer a, JsonNode vmdesc, Path dir, PrintWriter out) throws IOException {
    Files.createDirectories(dir);
    Path root = dir.toAbsolutePath().normalize();
    if (vmdesc != null) {
      Files.writeString(dir.resolve("desc.json"), PythonJson.write(vmdesc), StandardCharsets.UTF_8);
      out.println("desc.json");
    }
    // written already: each block is a mapping of its file (StreamAnalyzer#extractRamTo), here
    // written back to disk and renamed from NAME.partial
    a.finishExtraction();
    for (RamBlock b : a.ramBlocks()) {
      out.println(b.name().replaceFirst("^/+", ""));
    }
    for (StreamAnalyzer.Disk d : a.disks()) {
      String rel = "disk-" + d.name() + ".raw";
      try (FileChannel src = FileChannel.open(d.file(), StandardOpenOption.READ);
          FileChannel dst = FileChannel.open(
              root.resolve(rel), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
        for (long pos = 0; pos < d.extentBytes(); ) {
          pos += src.transferTo(pos, d.extentBytes() - pos, dst);
        }
        if (dst.size() < d.extentBytes()) {
          dst.write(ByteBuffer.allocate(1), d.extentBytes() - 1); // trailing zero chunks
        }
      }
      out.println(rel);
    }
    if (vmdesc != null) {
      Files.writeString(dir.resolve("state.json"), PythonJson.write(a.state()), StandardCharsets.UTF_8);
      out.println("state.json");
    }
  }

  private static void list(Path file, long length, StreamAnalyzer a, JsonNode vmdesc, PrintWriter out) {
    out.printf("%s: %d bytes, %s%n", file, length, vmdesc == null
        ? "no vmdesc (device sections found by their footers)"
        : "vmdesc with " + vmdesc.path("devices").size() + " devices, page size " + vmdesc.path("page_size").asLong());
    out.printf("%12s %8s  %-8s %s%n", "offset", "bytes", "record", "");
    out.printf("%12d %8d  %-8s %s%n", 0L, 8L, "HEADER", "QEVM version 3");
    for (StreamAnalyzer.Entry e : a.entries()) {
      out.printf("%12d %8s  %-8s %s%n", e.offset(), e.length() < 0 ? "" : Long.toString(e.length()), e.kind(), e.text());
    }
    RamLoadStats s = a.ramStats();
    if (s != null) {
      long total = a.ramBlocks().stream().mapToLong(RamBlock::usedLength).sum();
      out.printf("RAM: %d blocks, %d bytes, %d chunks; pages: %d zero, %d normal, %d xbzrle, %d compressed%n",
          a.ramBlocks().size(), total, s.chunks(), s.zeroPages(), s.normalPages(), s.xbzrlePages(), s.compressedPages());
      for (RamBlock b : a.ramBlocks()) {
        RamLoadStats.BlockCounts c = s.blocks().get(b.name());
        out.printf("  %-24s 0x%012x  %s%n", b.name(), b.usedLength(), c == null ? "no pages" : c.toString());
      }
    }
    for (StreamAnalyzer.Disk d : a.disks()) {
      out.printf("disk '%s': %d bytes as carried, %d data chunks, %d zero chunks%n",
          d.name(), d.extentBytes(), d.dataChunks(), d.zeroChunks());
    }
    if (!a.commands().isEmpty()) {
      Map<String, Integer> byType = new LinkedHashMap<>();
      for (StreamCommand c : a.commands()) {
        byType.merge(c.command().name(), 1, Integer::sum);
      }
      StringBuilder sb = new StringBuilder();
      byType.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(v));
      out.printf("commands: %d (%s)%n", a.commands().size(), sb);
    }
    postcopy(a, out);
    multifd(a.multifd(), out);
  }

  private static void multifd(MultifdChannels m, PrintWriter out) {
    if (m == null) {
      return;
    }
    long pages = m.channels().stream().mapToLong(c -> c.reader.pages()).sum();
    out.printf("multifd: %d channels, %d pages, %d RAM EOS sync points%n", m.channels().size(), pages, m.syncs());
    for (MultifdChannels.Channel c : m.channels()) {
      out.println(m.summary(c));
      out.printf("%12d %8d  %-8s id %d, uuid %s%n", 0L, (long) dev.ferry.stream.MultifdInit.LENGTH, "INIT", c.init.id(),
          c.init.uuidText());
      for (MultifdChannels.Packet p : c.packets) {
        out.printf("%12d %8d  %-8s %s%n", p.offset(), p.length(), "PACKET", p.text());
      }
    }
  }

  private static void postcopy(StreamAnalyzer a, PrintWriter out) {
    for (Map.Entry<String, List<StreamCommand.Range>> d : a.discards().entrySet()) {
      long bytes = d.getValue().stream().mapToLong(StreamCommand.Range::length).sum();
      out.printf("discarded: '%s' %d ranges, %d bytes (%d target pages)%n", d.getKey(), d.getValue().size(), bytes, bytes / 4096);
    }
    for (StreamAnalyzer.Package p : a.packages()) {
      out.printf("package at %d: %d bytes, %d device sections, commands %s%n",
          p.offset(), p.length(), p.sections().size(), String.join(", ", p.commands()));
    }
    if (a.postcopyRan()) {
      Map<String, long[]> perBlock = new LinkedHashMap<>();
      for (StreamAnalyzer.PostcopyPage pg : a.postcopyPages()) {
        long[] n = perBlock.computeIfAbsent(pg.block(), k -> new long[2]);
        n[0]++;
        n[1] += pg.length();
      }
      StringBuilder sb = new StringBuilder();
      perBlock.forEach((k, n) -> sb.append(sb.isEmpty() ? "" : ", ").append('\'').append(k).append("' ").append(n[0]));
      out.printf("postcopy RAM after RUN: %d pages in %d sections%s, %d sent twice%n", a.postcopyPages().size(),
          a.postcopySections(), sb.isEmpty() ? "" : " (" + sb + ")", a.postcopyDuplicates());
      if (a.cut() != null) {
        out.printf("stream cut at offset %d in postcopy, no EOF%n", a.cut().offset());
      } else if (a.eofOffset() >= 0) {
        out.printf("EOF at %d, %s%n", a.eofOffset(), a.vmdescOffset() < 0 ? "no vmdesc" : "vmdesc at " + a.vmdescOffset());
      }
    }
  }

  /** The one-line message for an error. */
  public static String message(Throwable e) {
    String m;
    if (e instanceof MigrationStreamException) {
      m = e.getMessage();
    } else if (e instanceof NoSuchFileException) {
      m = "no such file: " + e.getMessage();
    } else if (e instanceof OutOfMemoryError) {
      m = "out of memory (" + e.getMessage() + ")";
    } else {
      m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }
    return m.replace('\n', ' ');
  }
}
