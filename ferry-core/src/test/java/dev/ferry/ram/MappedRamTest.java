package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mapped-ram layout at the RAM level: a save's chunks written into a file with the
 * capability on (setup, iterations, completion, back to back as the section bodies would be), read
 * back by a {@link RamLoader}; golden bytes of the header at computed offsets; the zero-after-data
 * case; corruption (bad magic version, truncation, a present page past the end, stray bits).
 */
class MappedRamTest {
  private static final int PAGE = 4096;
  private static final long MIB = 1 << 20;
  /** The block list's entry for "ram": be64 total|MEM_SIZE, u8 3, "ram", be64 length. */
  private static final long HEADER_AT = 8 + 1 + 3 + 8;

  @TempDir Path dir;
  Path file;

  @BeforeEach
  void setUp() {
    file = dir.resolve("ram.mapped");
  }

  private static RamSaveOptions mappedRam() {
    return new RamSaveOptions(RamSaveListener.NONE, false, 0, false, true);
  }

  /** Saves {@code src} into the file: setup, one iteration per call of {@code between}, complete. */
  private void save(GuestRam src, Runnable afterFirstPass) throws IOException {
    try (MigrationOutput out = new MigrationOutput(Transports.connect("file:" + file));
        LiveSave s = new RamLiveState(src).openSave(SaveOptions.of(mappedRam()))) {
      s.setup(out);
      while (!s.iterate(out, () -> false)) {
        // the first pass
      }
      afterFirstPass.run();
      s.pendingExactBytes(); // the dirty sync of the next round
      while (!s.iterate(out, () -> false)) {
        // the second pass
      }
      s.complete(out);
    }
  }

  private RamLoader load(GuestRam dst, boolean zeroed) throws IOException {
    RamLoader loader =
        new RamLoader(RamBlockResolver.of(dst.blocks()), RamLoadOptions.defaults().withMappedRam(true).withBlocksStartZeroed(zeroed));
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      MigrationInput in = new MigrationInput(ch);
      while (!in.atEnd()) {
        loader.loadChunk(in);
      }
    } finally {
      loader.close();
    }
    return loader;
  }

  private static void assertSameRam(GuestRam a, GuestRam b) {
    for (int i = 0; i < a.blocks().size(); i++) {
      RamBlock x = a.blocks().get(i);
      RamBlock y = b.blocks().get(i);
      long at = x.memory().mismatch(y.memory());
      assertThat(at).as("first differing byte of block '%s'", x.name()).isEqualTo(-1);
    }
  }

  @Test
  void headerBitmapAndPagesAreAtTheirComputedOffsets() throws IOException {
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 4 * MIB)));
        GuestMemory g = src.openMemory()) {
      g.fillPage(0, 0, (byte) 0x11);
      g.fillPage(0, 1, (byte) 0x22);
      g.fillPage(0, 65, (byte) 0x33);
      save(src, () -> {});
    }
    byte[] f = Files.readAllBytes(file);
    // MEM_SIZE: total 4 MiB | 0x04, "ram", length 4 MiB
    assertThat(HexFormat.of().formatHex(f, 0, (int) HEADER_AT)).isEqualTo("0000000000400004" + "03" + "72616d" + "0000000000400000");
    // version 1, page size 0x1000, bitmap at 20 + 28 = 0x30, pages at the next MiB
    assertThat(HexFormat.of().formatHex(f, (int) HEADER_AT, (int) HEADER_AT + 28))
        .isEqualTo("00000001" + "0000000000001000" + "0000000000000030" + "0000000000100000");
    // 1024 pages: 16 little-endian words; pages 0, 1 and 65 present
    ByteBuffer bm = ByteBuffer.wrap(f, 0x30, 128).order(ByteOrder.LITTLE_ENDIAN);
    assertThat(bm.getLong()).isEqualTo(0b11L);
    assertThat(bm.getLong()).isEqualTo(0b10L);
    for (int w = 2; w < 16; w++) {
      assertThat(bm.getLong()).isZero();
    }
    assertThat(f[(int) MIB]).isEqualTo((byte) 0x11);
    assertThat(f[(int) MIB + PAGE]).isEqualTo((byte) 0x22);
    assertThat(f[(int) MIB + 65 * PAGE + PAGE - 1]).isEqualTo((byte) 0x33);
    // after the page region: the setup chunk's EOS, then the iterations' and completion's EOS
    long tail = MIB + 4 * MIB;
    assertThat(f.length - tail).as("bytes after the page region").isEqualTo(8L * 4);
    assertThat(HexFormat.of().formatHex(f, (int) tail, (int) tail + 8)).isEqualTo("0000000000000010");
  }

  /** A file channel as {@code file:} gives it, for a stream that starts past a prefix of the file. */
  private static final class PrefixedFile implements java.nio.channels.GatheringByteChannel, dev.ferry.stream.SeekableChannel {
    private final FileChannel ch;

    PrefixedFile(FileChannel ch) {
      this.ch = ch;
    }

    @Override
    public FileChannel fileChannel() {
      return ch;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return ch.write(src);
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
      return ch.write(srcs, offset, length);
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
      return ch.write(srcs);
    }

    @Override
    public boolean isOpen() {
      return ch.isOpen();
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }

  /**
   * A stream that starts 4 KiB into its file (as behind another tool's own header): the header's
   * offsets are file offsets, as QEMU writes them, and the load is exact.
   */
  @Test
  void offsetsAreFileOffsetsWhenTheStreamStartsPastAPrefix() throws IOException {
    int prefix = 4096;
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 2 * MIB)));
        GuestMemory g = src.openMemory();
        GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", 2 * MIB)))) {
      for (long p = 0; p < 512; p += 2) {
        g.fillPage(0, p, (byte) (p | 1));
      }
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
        ch.write(ByteBuffer.wrap(new byte[prefix]).put(0, (byte) 0x7f));
        MigrationOutput out = new MigrationOutput(new PrefixedFile(ch));
        try (LiveSave s = new RamLiveState(src).openSave(SaveOptions.of(mappedRam()))) {
          s.setup(out);
          while (!s.iterate(out, () -> false)) {
            // one pass
          }
          s.complete(out);
        }
        out.flush();
      }
      byte[] f = Files.readAllBytes(file);
      assertThat(HexFormat.of().formatHex(f, prefix + (int) HEADER_AT + 12, prefix + (int) HEADER_AT + 28))
          .as("bitmap and pages offsets").isEqualTo(String.format("%016x%016x", prefix + HEADER_AT + 28, MIB));
      RamLoader loader = new RamLoader(RamBlockResolver.of(dst.blocks()), RamLoadOptions.defaults().withMappedRam(true));
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        MigrationInput in = new MigrationInput(ch.position(prefix));
        while (!in.atEnd()) {
          loader.loadChunk(in);
        }
      } finally {
        loader.close();
      }
      assertSameRam(src, dst);
    }
  }

  @Test
  void roundTripIsExactAndAPageZeroedAfterItWasSentComesBackZero() throws IOException {
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 8 * MIB), RamBlock.allocate("vram", 2 * MIB)));
        GuestMemory g = src.openMemory()) {
      for (long p = 0; p < 2048; p += 3) {
        g.putLong(0, p * PAGE + 8 * (p % 512), p + 1);
      }
      g.fillPage(1, 7, (byte) 0x7e);
      save(src, () -> {
        g.fillPage(0, 300, (byte) 0); // non-zero in the first pass, zero in the second
        g.fillPage(1, 7, (byte) 0);
        g.fillPage(0, 301, (byte) 0x44); // new data in the second pass
      });
      assertThat(src.blocks().get(0).targetPage(300L * PAGE).get(java.lang.foreign.ValueLayout.JAVA_LONG, 8 * 300)).isZero();
      // a fresh destination, and one whose RAM holds data everywhere
      try (GuestRam fresh = new GuestRam(List.of(RamBlock.allocate("ram", 8 * MIB), RamBlock.allocate("vram", 2 * MIB)));
          GuestRam used = new GuestRam(List.of(RamBlock.allocate("ram", 8 * MIB), RamBlock.allocate("vram", 2 * MIB)))) {
        RamLoader l = load(fresh, true);
        assertSameRam(src, fresh);
        assertThat(l.mappedRamBlocks()).extracting(MappedRamLayout.BlockInfo::block).containsExactly("ram", "vram");
        assertThat(l.mappedRamBlocks().get(1).pagesPresent()).isZero();
        for (RamBlock b : used.blocks()) {
          b.memory().fill((byte) 0xa5);
        }
        load(used, false);
        assertSameRam(src, used);
      }
    }
  }

  @Test
  void corruptFilesFailInOneLineNamingTheBlock() throws IOException {
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 4 * MIB)));
        GuestMemory g = src.openMemory()) {
      for (long p = 0; p < 1024; p++) {
        g.fillPage(0, p, (byte) 1);
      }
      save(src, () -> {});
    }
    byte[] good = Files.readAllBytes(file);
    // bad version
    assertLoadFails(patch(good, HEADER_AT, "00000002"), "Migration mapped-ram capability version not supported (expected <= 1, got 2)");
    // bad page size
    assertLoadFails(patch(good, HEADER_AT + 4, "0000000000000200"), "page size 0x200, expected 0x1000");
    // pages region not 4 KiB aligned
    assertLoadFails(patch(good, HEADER_AT + 20, "0000000000100200"), "region has bad alignment");
    // bitmap overlapping the header
    assertLoadFails(patch(good, HEADER_AT + 12, "0000000000000010"), "do not follow the header");
    // truncated inside the page region: the bitmap says page 0x3ff is there
    assertLoadFails(java.util.Arrays.copyOf(good, (int) (MIB + 512 * PAGE)),
        "page 0x3ff000 of RAM block 'ram' is present in the mapped-ram bitmap, but its file offset 0x4ff000 is past the end of the file (0x300000 bytes)");
    // truncated inside the bitmap
    assertLoadFails(java.util.Arrays.copyOf(good, 0x40), "is past the end of the file (0x40 bytes)");
    // truncated after the page region: the stream itself ends early
    assertLoadFails(java.util.Arrays.copyOf(good, (int) (5 * MIB) + 4), "unexpected end of stream");
  }

  /**
   * Seeded bit flips and truncations anywhere outside the page region (block list, header, bitmap,
   * the stream after the pages): each load ends in success or one {@link MigrationStreamException},
   * never another exception, a hang or an allocation from a wild length.
   */
  @Test
  void randomCorruptionEndsInAClearErrorOrASuccess() throws IOException {
    long seed = Long.getLong("ferry.seed", 0x5eedL);
    System.out.println("MappedRamTest seed " + seed);
    java.util.Random rnd = new java.util.Random(seed);
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 4 * MIB)));
        GuestMemory g = src.openMemory()) {
      for (long p = 0; p < 1024; p += 1 + rnd.nextInt(7)) {
        g.fillPage(0, p, (byte) (1 + rnd.nextInt(255)));
      }
      save(src, () -> {});
    }
    byte[] good = Files.readAllBytes(file);
    for (int i = 0; i < 64; i++) {
      byte[] b;
      if (rnd.nextInt(4) == 0) {
        b = java.util.Arrays.copyOf(good, rnd.nextInt(good.length));
      } else {
        b = good.clone();
        int at = rnd.nextBoolean() ? rnd.nextInt(0x30 + 128) : (int) (5 * MIB) + rnd.nextInt(good.length - (int) (5 * MIB));
        b[at] ^= (byte) (1 << rnd.nextInt(8));
      }
      Files.write(file, b);
      try (GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", 4 * MIB)))) {
        load(dst, true);
      } catch (MigrationStreamException e) {
        assertThat(e.getMessage()).as("seed %d, case %d", seed, i).doesNotContain("\n");
      }
    }
  }

  @Test
  void pageRecordsAreRefusedInAMappedRamStream() throws IOException {
    try (GuestRam src = new GuestRam(List.of(RamBlock.allocate("ram", 1 * MIB)));
        GuestMemory g = src.openMemory()) {
      g.fillPage(0, 3, (byte) 9);
      // a normal stream (no mapped-ram) read by a mapped-ram loader
      try (MigrationOutput out = new MigrationOutput(Transports.connect("file:" + file));
          LiveSave s = new RamLiveState(src).openSave(SaveOptions.NONE)) {
        s.setup(out);
        s.complete(out);
      }
    }
    // its block list has no mapped-ram header: the first page record's flags read as a version
    try (GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", 1 * MIB)))) {
      assertThatThrownBy(() -> load(dst, true)).isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("mapped-ram");
    }
  }

  private byte[] patch(byte[] good, long at, String hex) {
    byte[] b = good.clone();
    byte[] p = HexFormat.of().parseHex(hex);
    System.arraycopy(p, 0, b, (int) at, p.length);
    return b;
  }

  private void assertLoadFails(byte[] bytes, String message) throws IOException {
    Files.write(file, bytes);
    try (GuestRam dst = new GuestRam(List.of(RamBlock.allocate("ram", 4 * MIB)))) {
      assertThatThrownBy(() -> load(dst, true))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining(message)
          .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }
  }
}
