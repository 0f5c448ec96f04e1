package dev.ferry.machine;

import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamDigest;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.StreamHeader;
import dev.ferry.stream.QemuJsonWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.zip.CRC32C;

/**
 * An exact digest of a stopped machine (QMP {@code ferry-memory-digest}, HMP {@code info digest}):
 * every RAM block (name, length, content), all device state (the bytes each device's section
 * would save) and the content of every drive (a {@code disk:NAME} section each). Two machines with equal digests hold the same memory and device state; {@link
 * #firstDifference} names where two digests part, down to the page when both kept page digests.
 *
 * <p>Algorithm {@value #ALGORITHM}: the CRC32C of every 4 KiB page (see {@link RamDigest}; a page
 * never touched counts as zeros without being read), folded in page order with the block's name
 * and length into a 64-bit block digest by a splitmix64-style mixer; the {@code ram} digest folds the
 * block digests in order. Each device section's body bytes get a CRC32C, folded with its idstr,
 * instance, version and length into a section digest; {@code devices} folds those. Digests are 16
 * hex digits. {@code bytes} counts what was covered: the blocks' lengths plus the device bytes.
 *
 * <p>Not in the device digest: {@code globalstate}, which records the run state itself (a stopped
 * source is {@code postmigrate}, its destination {@code inmigrate} or {@code paused}) rather than
 * machine content. The RAM block list ({@code ferry-ram-layout}) is in.
 */
public final class MemoryDigest {
  public static final String ALGORITHM = "crc32c-4k";

  private static final int PAGE = StreamHeader.TARGET_PAGE_SIZE;
  private static final HexFormat HEX = HexFormat.of();
  /** Prefix of the sections that stand for a disk's content ({@code disk:NAME}). */
  public static final String DISK_SECTION_PREFIX = "disk:";
  /** Sections whose bytes are not machine content (see the class comment). */
  private static final String RUN_STATE_SECTION = "globalstate";

  /** One RAM block's digest. */
  public record Block(String name, long length, String digest) {
    public Block {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(digest, "digest");
    }
  }

  /** One device section's digest ({@code length}: its body bytes). */
  public record Section(String idstr, int instanceId, long length, String digest) {
    public Section {
      Objects.requireNonNull(idstr, "idstr");
      Objects.requireNonNull(digest, "digest");
    }
  }

  private final String algorithm;
  private final String ram;
  private final String devices;
  private final long bytes;
  private final List<Block> blocks;
  private final List<Section> sections;
  /** Page CRCs per block name, when kept (a digest taken in this process, or asked for over QMP). */
  private final Map<String, int[]> pages;

  /**
   * A digest from its parts, e.g. read back from QMP. {@code pages} maps block names to their page
   * CRCs (index = offset / 4096) and may be empty or lack blocks; {@code sections} may be empty.
   */
  public MemoryDigest(
      String algorithm,
      String ram,
      String devices,
      long bytes,
      List<Block> blocks,
      List<Section> sections,
      Map<String, int[]> pages) {
    this.algorithm = Objects.requireNonNull(algorithm, "algorithm");
    this.ram = Objects.requireNonNull(ram, "ram");
    this.devices = Objects.requireNonNull(devices, "devices");
    this.bytes = bytes;
    this.blocks = List.copyOf(blocks);
    this.sections = List.copyOf(sections);
    this.pages = Map.copyOf(pages);
  }

  public String algorithm() {
    return algorithm;
  }

  /** Digest of all RAM blocks. */
  public String ram() {
    return ram;
  }

  /** Digest of all device state. */
  public String devices() {
    return devices;
  }

  /** Bytes covered: RAM block lengths plus device state bytes. */
  public long bytes() {
    return bytes;
  }

  public List<Block> blocks() {
    return blocks;
  }

  public List<Section> sections() {
    return sections;
  }

  /** The page CRCs of block {@code name} (a copy; index = offset / 4096), or null when not kept. */
  public int[] pageDigests(String name) {
    int[] p = pages.get(name);
    return p == null ? null : p.clone();
  }

  /** True when both digests cover the same content (page digests, kept or not, do not count). */
  public boolean matches(MemoryDigest other) {
    return firstDifference(other).isEmpty();
  }

  /**
   * Where this digest and {@code other} first part, as one line, e.g. {@code block 'ram' differs
   * first at page 0x6262000 (11520 of 262144 pages differ)}; empty when they are equal. The page is
   * named when both sides kept that block's page digests, otherwise only the block.
   */
  public Optional<String> firstDifference(MemoryDigest other) {
    if (!algorithm.equals(other.algorithm)) {
      return Optional.of("digest algorithms differ: " + algorithm + " vs " + other.algorithm);
    }
    for (int i = 0; i < Math.max(blocks.size(), other.blocks.size()); i++) {
      if (i >= blocks.size()) {
        return Optional.of("RAM block '" + other.blocks.get(i).name() + "' exists only on the other side");
      }
      if (i >= other.blocks.size()) {
        return Optional.of("RAM block '" + blocks.get(i).name() + "' exists only on this side");
      }
      Block a = blocks.get(i);
      Block b = other.blocks.get(i);
      if (!a.name().equals(b.name())) {
        return Optional.of("RAM block " + i + " is '" + a.name() + "' vs '" + b.name() + "'");
      }
      if (a.length() != b.length()) {
        return Optional.of("RAM block '" + a.name() + "' length " + a.length() + " vs " + b.length());
      }
      if (!a.digest().equals(b.digest())) {
        return Optional.of(blockDifference(a, pages.get(a.name()), other.pages.get(b.name())));
      }
    }
    if (!ram.equals(other.ram)) {
      return Optional.of("RAM digest " + ram + " vs " + other.ram + " with equal blocks");
    }
    if (!devices.equals(other.devices)) {
      for (int i = 0; i < Math.min(sections.size(), other.sections.size()); i++) {
        Section a = sections.get(i);
        Section b = other.sections.get(i);
        if (!a.idstr().equals(b.idstr()) || a.instanceId() != b.instanceId()) {
          return Optional.of(
              "device sections differ: '" + a.idstr() + "' instance " + a.instanceId() + " vs '" + b.idstr()
                  + "' instance " + b.instanceId());
        }
        if ((!a.digest().equals(b.digest()) || a.length() != b.length()) && a.idstr().startsWith(DISK_SECTION_PREFIX)) {
          return Optional.of("disk content differs: drive '" + a.idstr().substring(DISK_SECTION_PREFIX.length())
              + "' (" + a.length() + " vs " + b.length() + " bytes)");
        }
        if (!a.digest().equals(b.digest()) || a.length() != b.length()) {
          return Optional.of(
              "device state differs first in section '" + a.idstr() + "' instance " + a.instanceId() + " ("
                  + a.length() + " vs " + b.length() + " bytes)");
        }
      }
      if (sections.size() != other.sections.size()) {
        return Optional.of("device sections differ: " + sections.size() + " vs " + other.sections.size());
      }
      return Optional.of("device state differs: " + devices + " vs " + other.devices);
    }
    return Optional.empty();
  }

  private static String blockDifference(Block a, int[] mine, int[] theirs) {
    if (mine == null || theirs == null || mine.length != theirs.length) {
      return "RAM block '" + a.name() + "' differs (no page digests to name the page)";
    }
    int first = -1;
    long count = 0;
    for (int i = 0; i < mine.length; i++) {
      if (mine[i] != theirs[i]) {
        if (first < 0) {
          first = i;
        }
        count++;
      }
    }
    if (first < 0) {
      return "RAM block '" + a.name() + "' differs with equal page digests";
    }
    return "block '" + a.name() + "' differs first at page 0x" + Long.toHexString((long) first * PAGE) + " ("
        + count + " of " + mine.length + " pages differ)";
  }

  /** One line for logs and reports: algorithm, ram and devices digests, bytes. */
  @Override
  public String toString() {
    return algorithm + " ram " + ram + " devices " + devices + " (" + bytes + " bytes)";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MemoryDigest d
        && algorithm.equals(d.algorithm)
        && ram.equals(d.ram)
        && devices.equals(d.devices)
        && bytes == d.bytes
        && blocks.equals(d.blocks)
        && sections.equals(d.sections);
  }

  @Override
  public int hashCode() {
    return Objects.hash(algorithm, ram, devices, bytes, blocks, sections);
  }

  // ------------------------------------------------------------------ computing

  /**
   * Digests {@code blocks} and the state {@code entries} would save. Nothing may write them
   * meanwhile: the caller stops the machine (see {@link MachineHost#memoryDigest()}).
   */
  static MemoryDigest compute(List<RamBlock> blocks, List<SaveStateEntry> entries) {
    return compute(blocks, entries, List.of());
  }

  /**
   * {@link #compute(List, List)} covering the content of {@code disks} too: each disk is one more
   * section {@code disk:NAME} (instance = its index) after the device sections, its length the
   * disk's size and its digest the CRC32C of every 1 MiB chunk folded in order.
   */
  static MemoryDigest compute(
      List<RamBlock> blocks, List<SaveStateEntry> entries, List<dev.ferry.block.DiskImage> disks) {
    long bytes = 0;
    List<Block> blockDigests = new ArrayList<>(blocks.size());
    Map<String, int[]> pages = new LinkedHashMap<>();
    long ramHash = seed(ALGORITHM);
    for (RamBlock b : blocks) {
      int[] crcs = RamDigest.pageCrcs(b);
      long h = fold(seed(b.name()), b.usedLength());
      for (int crc : crcs) {
        h = fold(h, Integer.toUnsignedLong(crc));
      }
      blockDigests.add(new Block(b.name(), b.usedLength(), HEX.toHexDigits(h)));
      pages.put(b.name(), crcs);
      ramHash = fold(ramHash, h);
      bytes += b.usedLength();
    }
    List<Section> sections = new ArrayList<>();
    long devHash = seed(ALGORITHM);
    CrcChannel sink = new CrcChannel();
    try (MigrationOutput out = new MigrationOutput(sink)) {
      for (SaveStateEntry e : entries) {
        if (!e.needed() || e.idstr().equals(RUN_STATE_SECTION)) {
          continue;
        }
        sink.reset();
        QemuJsonWriter desc = new QemuJsonWriter().beginObject();
        e.save(out, desc);
        out.flush();
        long h = fold(fold(fold(seed(e.idstr()), e.instanceId()), e.saveVersion()), sink.count);
        h = fold(h, sink.crc.getValue());
        sections.add(new Section(e.idstr(), e.instanceId(), sink.count, HEX.toHexDigits(h)));
        devHash = fold(devHash, h);
        bytes += sink.count;
      }
    } catch (IOException ex) {
      // the sink never fails; a device whose save fails is a bug worth surfacing as such
      throw new UncheckedIOException("saving device state for the digest failed: " + ex.getMessage(), ex);
    }
    ByteBuffer chunk = disks.isEmpty() ? null : ByteBuffer.allocateDirect(dev.ferry.block.BlockDescriptor.CHUNK_BYTES);
    for (int i = 0; i < disks.size(); i++) {
      dev.ferry.block.DiskImage d = disks.get(i);
      String idstr = DISK_SECTION_PREFIX + d.name();
      long h = fold(fold(seed(idstr), i), d.sizeBytes());
      CRC32C crc = new CRC32C();
      for (long off = 0; off < d.sizeBytes(); off += chunk.capacity()) {
        chunk.clear().limit((int) Math.min(chunk.capacity(), d.sizeBytes() - off));
        try {
          d.read(off, chunk);
        } catch (IOException ex) {
          throw new UncheckedIOException("reading drive '" + d.name() + "' for the digest failed: " + ex.getMessage(), ex);
        }
        crc.reset();
        crc.update(chunk.flip());
        h = fold(h, crc.getValue());
      }
      sections.add(new Section(idstr, i, d.sizeBytes(), HEX.toHexDigits(h)));
      devHash = fold(devHash, h);
      bytes += d.sizeBytes();
    }
    return new MemoryDigest(
        ALGORITHM, HEX.toHexDigits(ramHash), HEX.toHexDigits(devHash), bytes, blockDigests, sections, pages);
  }

  private static long seed(String s) {
    CRC32C c = new CRC32C();
    c.update(s.getBytes(StandardCharsets.UTF_8));
    return fold(0x243f6a8885a308d3L, c.getValue() ^ ((long) s.length() << 32));
  }

  /** Folds {@code v} into {@code h}, order-dependent (splitmix64's finaliser over h·φ + v). */
  static long fold(long h, long v) {
    long z = h * 0x9e3779b97f4a7c15L + v + 1;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** Takes a section body's bytes: CRC32C and count. */
  private static final class CrcChannel implements WritableByteChannel {
    final CRC32C crc = new CRC32C();
    long count;

    void reset() {
      crc.reset();
      count = 0;
    }

    @Override
    public int write(ByteBuffer src) {
      int n = src.remaining();
      crc.update(src);
      count += n;
      return n;
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }
}
