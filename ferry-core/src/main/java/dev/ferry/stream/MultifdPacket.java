package dev.ferry.stream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The header of one packet on a QEMU 7.2 multifd channel ({@code MultiFDPacket_t}), always the full
 * {@value #LENGTH} bytes for 4 KiB target pages, integers big-endian:
 *
 * <pre>
 *   0      4        8      12           16            20                 24           32         64
 *   +------+--------+------+------------+-------------+------------------+------------+----------+
 *   |magic |version |flags |pages_alloc |normal_pages |next_packet_size  |packet_num  |unused[32]|
 *   +------+--------+------+------------+-------------+------------------+------------+----------+
 *   64                         320                                                  1344
 *   +--------------------------+-----------------------------------------------------+
 *   | ramblock (256, NUL pad)  | offset[128] (be64 byte offsets in the block)         |
 *   +--------------------------+-----------------------------------------------------+
 * </pre>
 *
 * followed by {@code normal_pages} raw pages, or {@code next_packet_size} bytes of the channel's
 * zlib/zstd stream. Bit 0 of the flags is SYNC; bits 1–3 the compression ({@link MultifdCompression}).
 * When {@code normal_pages} is 0 the block name, the payload size and the offsets are stale leftovers
 * of the sender's buffer and mean nothing.
 *
 * <p>One instance is reused for every packet of a channel ({@link #read} overwrites it).
 */
public final class MultifdPacket {
  public static final int MAGIC = MultifdInit.MAGIC;
  public static final int VERSION = 1;
  /** {@code MULTIFD_PACKET_SIZE}: the page bytes one packet carries at most. */
  public static final int PACKET_SIZE = 512 * 1024;
  public static final int PAGE_SIZE = 4096;
  /** Page slots per packet (128). */
  public static final int PAGE_COUNT = PACKET_SIZE / PAGE_SIZE;
  public static final int BLOCK_NAME_LENGTH = 256;
  public static final int OFFSETS_AT = 64 + BLOCK_NAME_LENGTH;
  /** Header bytes: 320 + 8 × 128 = 1344. */
  public static final int LENGTH = OFFSETS_AT + 8 * PAGE_COUNT;
  /** {@code MULTIFD_FLAG_SYNC}. */
  public static final int FLAG_SYNC = 0x1;
  /** Largest compressed payload accepted: the receive buffer of 7.2's zlib and zstd (2 × 512 KiB). */
  public static final int MAX_COMPRESSED_SIZE = 2 * PACKET_SIZE;

  private int flags;
  private int pagesAlloc;
  private int normalPages;
  private int nextPacketSize;
  private long packetNum;
  private String block = "";
  private final long[] offsets = new long[PAGE_COUNT];
  private long streamOffset = -1;
  /** The reused bytes of one header ({@link #read(MigrationInput)}). */
  private ByteBuffer headerBytes;

  public int flags() {
    return flags;
  }

  public boolean sync() {
    return (flags & FLAG_SYNC) != 0;
  }

  public int pagesAlloc() {
    return pagesAlloc;
  }

  public int normalPages() {
    return normalPages;
  }

  /** Payload bytes after the header (meaningful only when the packet has pages). */
  public int nextPacketSize() {
    return nextPacketSize;
  }

  public long packetNum() {
    return packetNum;
  }

  /** The RAM block of the pages; meaningful only when the packet has pages. */
  public String block() {
    return block;
  }

  /** Byte offset in the block of page {@code i} (0 ≤ i < normalPages). */
  public long offset(int i) {
    return offsets[i];
  }

  /** Where the header started in its channel. */
  public long streamOffset() {
    return streamOffset;
  }

  /** Sets the fields for {@link #write}: {@code offsets} holds the first {@code normalPages} offsets. */
  public MultifdPacket set(int flags, int normalPages, int nextPacketSize, long packetNum, String block, long[] pageOffsets) {
    if (normalPages < 0 || normalPages > PAGE_COUNT) {
      throw new IllegalArgumentException("multifd packet with " + normalPages + " pages");
    }
    this.flags = flags;
    this.pagesAlloc = PAGE_COUNT;
    this.normalPages = normalPages;
    this.nextPacketSize = nextPacketSize;
    this.packetNum = packetNum;
    this.block = block;
    System.arraycopy(pageOffsets, 0, offsets, 0, normalPages);
    return this;
  }

  /** Writes the {@value #LENGTH}-byte header at {@code out}'s position. */
  public void write(ByteBuffer out) {
    out.putInt(MAGIC).putInt(VERSION).putInt(flags).putInt(pagesAlloc).putInt(normalPages).putInt(nextPacketSize)
        .putLong(packetNum);
    for (int i = 0; i < 4; i++) {
      out.putLong(0);
    }
    byte[] name = block.getBytes(StandardCharsets.UTF_8);
    int n = Math.min(name.length, BLOCK_NAME_LENGTH - 1);
    out.put(name, 0, n);
    for (int i = n; i < BLOCK_NAME_LENGTH; i++) {
      out.put((byte) 0);
    }
    for (int i = 0; i < PAGE_COUNT; i++) {
      out.putLong(i < normalPages ? offsets[i] : 0);
    }
  }

  /**
   * Reads the next header and checks it as QEMU 7.2's {@code multifd_recv_unfill_packet} does (magic,
   * version, pages_alloc, normal_pages; QEMU's texts). The block name and offsets are kept only when
   * the packet has pages; checking them against the RAM blocks is the caller's.
   *
   * @return false on a clean end of the channel exactly at a header boundary
   */
  public boolean read(MigrationInput in) throws IOException {
    if (in.atEnd()) {
      return false;
    }
    long at = in.position();
    if (headerBytes == null) {
      headerBytes = ByteBuffer.allocate(LENGTH);
    }
    in.readFully(headerBytes.array(), 0, LENGTH);
    try {
      parse(headerBytes.clear(), at);
    } catch (MigrationStreamException e) {
      throw in.fail(e);
    }
    return true;
  }

  /**
   * Parses the {@value #LENGTH}-byte header at {@code b}'s position (big-endian; the position moves
   * past it) that started at {@code streamOffset} of its channel, with the checks of {@link
   * #read(MigrationInput)}: the one parser of both the buffered reader and a channel read exactly.
   */
  public void parse(ByteBuffer b, long streamOffset) throws MigrationStreamException {
    this.streamOffset = streamOffset;
    int start = b.position();
    int magic = b.getInt(start);
    if (magic != MAGIC) {
      throw new MigrationStreamException(
          String.format("multifd: received packet magic %x and expected magic %x", magic, MAGIC), streamOffset);
    }
    long version = b.getInt(start + 4) & 0xFFFF_FFFFL;
    if (version != VERSION) {
      throw new MigrationStreamException(
          String.format("multifd: received packet version %d and expected version %d", version, VERSION),
          streamOffset);
    }
    flags = b.getInt(start + 8);
    long alloc = b.getInt(start + 12) & 0xFFFF_FFFFL;
    if (alloc > PAGE_COUNT) {
      throw new MigrationStreamException(
          String.format("multifd: received packet with size %d and expected a size of %d", alloc, PAGE_COUNT),
          streamOffset);
    }
    pagesAlloc = (int) alloc;
    long pages = b.getInt(start + 16) & 0xFFFF_FFFFL;
    if (pages > pagesAlloc) {
      throw new MigrationStreamException(String.format(
          "multifd: received packet with %d pages and expected maximum pages are %d", pages, pagesAlloc), streamOffset);
    }
    normalPages = (int) pages;
    nextPacketSize = b.getInt(start + 20);
    packetNum = b.getLong(start + 24);
    b.position(start + LENGTH);
    if (normalPages == 0) {
      return;
    }
    int len = 0;
    while (len < BLOCK_NAME_LENGTH - 1 && b.get(start + 64 + len) != 0) {
      len++;
    }
    if (len != block.length() || !sameName(b, start + 64, len)) {
      byte[] name = new byte[len];
      b.get(start + 64, name);
      block = new String(name, StandardCharsets.UTF_8);
    }
    for (int i = 0; i < normalPages; i++) {
      offsets[i] = b.getLong(start + OFFSETS_AT + 8 * i);
    }
  }

  /** True when the {@code len} name bytes at {@code at} spell the last packet's block (ASCII): no new String. */
  private boolean sameName(ByteBuffer b, int at, int len) {
    for (int i = 0; i < len; i++) {
      char c = block.charAt(i);
      if (c >= 0x80 || b.get(at + i) != (byte) c) {
        return false;
      }
    }
    return true;
  }

  /**
   * The end of the run of pages that starts at {@code from}: the first index after it whose page
   * does not follow its predecessor in the block ({@code offsets[i] != offsets[i-1] + PAGE_SIZE}), or
   * {@code count}. Such a run is one piece of RAM: one iovec, one (de)compression call.
   */
  public static int runEnd(long[] offsets, int from, int count) {
    int i = from + 1;
    while (i < count && offsets[i] == offsets[i - 1] + PAGE_SIZE) {
      i++;
    }
    return i;
  }

  /** {@link #runEnd(long[], int, int)} of this packet's pages. */
  public int runEnd(int from) {
    return runEnd(offsets, from, normalPages);
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format("flags 0x%x%s, %d pages, packet_num %d", flags, sync() ? " SYNC" : "", normalPages, packetNum));
    if (normalPages > 0) {
      sb.append(", '").append(block).append("', payload ").append(nextPacketSize).append(" bytes, offsets");
      for (int i = 0; i < Math.min(normalPages, 4); i++) {
        sb.append(String.format(" 0x%x", offsets[i]));
      }
      if (normalPages > 4) {
        sb.append(" ...");
      }
    }
    return sb.toString();
  }
}
