package dev.ferry.block;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamLoader;
import dev.ferry.savevm.SectionHeader;
import dev.ferry.savevm.StreamHandler;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.SectionType;
import dev.ferry.testing.Captures;
import dev.ferry.testing.FragmentingChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The {@code block} section codec: round trip, QEMU 7.2 golden bytes, fragmented input, corruption. */
@Timeout(60)
class BlockCodecTest {
  private static final int CHUNK = BlockDescriptor.CHUNK_BYTES;
  private static final long SEED = Long.getLong("ferry.seed", 42);

  /** A record as the reader reports it. */
  private record Rec(String kind, String device, long offset, int percent, byte[] data) {}

  private static List<Rec> readAll(ReadableByteChannel ch, int bodies) throws IOException {
    List<Rec> recs = new ArrayList<>();
    MigrationInput in = new MigrationInput(ch);
    ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
    for (int i = 0; i < bodies; i++) {
      BlockReader.readBody(in, handler(recs), buf);
      recs.add(new Rec("eos", null, 0, 0, null));
    }
    return recs;
  }

  private static BlockReader.Handler handler(List<Rec> recs) {
    return new BlockReader.Handler() {
      @Override
      public void progress(int percent, long at) {
        recs.add(new Rec("progress", null, 0, percent, null));
      }

      @Override
      public void chunk(String device, long offset, ByteBuffer data, long at) {
        byte[] d = null;
        if (data != null) {
          assertThat(data.remaining()).isEqualTo(CHUNK);
          d = new byte[CHUNK];
          data.get(d);
        }
        recs.add(new Rec(data == null ? "zero" : "chunk", device, offset, 0, d));
      }
    };
  }

  private static byte[] sample(Random r) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    BlockRecordWriter w = new BlockRecordWriter(out);
    w.writeEos(); // START
    w.writeProgress(0);
    byte[] data = new byte[CHUNK];
    r.nextBytes(data);
    w.writeChunk("drive0", 0, ByteBuffer.wrap(data));
    w.writeZeroChunk("drive0", CHUNK);
    w.writeProgress(50);
    w.writeChunk("a-longer-device-name", 7L * CHUNK, ByteBuffer.wrap(data));
    w.writeEos(); // PART
    w.writeProgress(100);
    w.writeEos(); // END
    out.flush();
    return bytes.toByteArray();
  }

  @ParameterizedTest
  @ValueSource(strings = {"whole", "oneByte", "shortReads"})
  void roundTrip(String how) throws IOException {
    Random r = new Random(SEED);
    byte[] s = sample(r);
    ReadableByteChannel ch =
        switch (how) {
          case "whole" -> Channels.newChannel(new java.io.ByteArrayInputStream(s));
          case "oneByte" -> FragmentingChannel.oneByteAtATime(s);
          default -> FragmentingChannel.randomShortReads(s, SEED, 4097);
        };
    List<Rec> recs = readAll(ch, 3);
    assertThat(recs).extracting(Rec::kind)
        .containsExactly("eos", "progress", "chunk", "zero", "progress", "chunk", "eos", "progress", "eos");
    assertThat(recs.get(2).device()).isEqualTo("drive0");
    assertThat(recs.get(3).offset()).isEqualTo(CHUNK);
    assertThat(recs.get(5).device()).isEqualTo("a-longer-device-name");
    assertThat(recs.get(5).offset()).isEqualTo(7L * CHUNK);
    byte[] data = new byte[CHUNK];
    new Random(SEED).nextBytes(data);
    assertThat(recs.get(2).data()).isEqualTo(data);
    assertThat(recs.get(5).data()).isEqualTo(data);
    assertThat(recs.get(4).percent()).isEqualTo(50);
  }

  @Test
  void wireBytesOfEachRecord() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    BlockRecordWriter w = new BlockRecordWriter(out);
    w.writeProgress(100);
    w.writeZeroChunk("drive0", 0x100000);
    w.writeEos();
    out.flush();
    // the bytes QEMU 7.2 wrote (spec §4.1): PROGRESS 100%, ZERO_BLOCK @1 MiB, EOS
    assertThat(HexFormat.of().formatHex(bytes.toByteArray()))
        .isEqualTo("000000000000c804" + "0000000000100009" + "06" + "647269766530" + "0000000000000002");
  }

  /** The block sections of a QEMU 7.2 capture, in stream order, with the RAM sections loaded aside. */
  private static List<Rec> captureRecords(String name) throws IOException {
    byte[] stream = Captures.stream(name);
    List<Rec> recs = new ArrayList<>();
    ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
    RamBlockResolver.Allocating ramBlocks = new RamBlockResolver.Allocating(1L << 30);
    RamLoader ram = new RamLoader(ramBlocks, RamLoadOptions.defaults());
    class Done extends RuntimeException {}
    try {
      new StreamReader(
              MigrationInput.of(stream),
              new StreamHandler() {
                @Override
                public void section(SectionHeader h, MigrationInput in) throws IOException {
                  if (h.type() == SectionType.FULL) {
                    throw new Done(); // the live sections are over
                  }
                  if (h.idstr().equals("block")) {
                    assertThat(h.version()).isEqualTo(1);
                    recs.add(new Rec(h.type().name(), null, 0, 0, null));
                    BlockReader.readBody(in, handler(recs), buf);
                  } else {
                    assertThat(h.idstr()).isEqualTo("ram");
                    ram.loadChunk(in);
                  }
                }
              })
          .readAll();
    } catch (MigrationStreamException e) {
      if (!(e.getCause() instanceof Done)) {
        throw e; // otherwise: stopped at the first device section
      }
    } finally {
      ram.close();
      ramBlocks.close();
    }
    return recs;
  }

  @ParameterizedTest
  @ValueSource(strings = {"pc-32M-block", "pc-32M-block-zero"})
  void goldenQemuCaptures(String name) throws Exception {
    List<Rec> recs = captureRecords(name);
    // START comes first and holds only EOS (block is registered before ram)
    assertThat(recs.get(0).kind()).isEqualTo("START");
    assertThat(recs.get(1).kind()).isIn("START", "PART");
    // a 3 MiB disk: the image rebuilt from the chunks equals QEMU's analyzer's extract
    byte[] image = new byte[3 * CHUNK];
    boolean[] seen = new boolean[3];
    int zeros = 0;
    List<Integer> progress = new ArrayList<>();
    for (Rec r : recs) {
      switch (r.kind()) {
        case "chunk" -> {
          assertThat(r.device()).isEqualTo("drive0");
          System.arraycopy(r.data(), 0, image, (int) r.offset(), CHUNK);
          seen[(int) (r.offset() / CHUNK)] = true;
        }
        case "zero" -> {
          seen[(int) (r.offset() / CHUNK)] = true;
          zeros++;
        }
        case "progress" -> progress.add(r.percent());
        default -> {}
      }
    }
    assertThat(seen).containsOnly(true);
    assertThat(progress).isSorted().contains(100).last().isEqualTo(100);
    assertThat(zeros > 0).isEqualTo(name.endsWith("-zero"));
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(image));
    assertThat(Captures.text(name, "disks.sha256")).isEqualTo(sha + "  disk-drive0.raw\n");
  }

  @Test
  void goldenBytesReencodeIdentically() throws IOException {
    // every record of the zero-blocks capture, written again by Ferry's writer, gives QEMU's bytes
    List<Rec> recs = captureRecords("pc-32M-block-zero");
    ByteArrayOutputStream mine = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(mine));
    BlockRecordWriter w = new BlockRecordWriter(out);
    int bodies = 0;
    for (int i = 1; i < recs.size(); i++) {
      Rec r = recs.get(i);
      switch (r.kind()) {
        case "chunk" -> w.writeChunk(r.device(), r.offset(), ByteBuffer.wrap(r.data()));
        case "zero" -> w.writeZeroChunk(r.device(), r.offset());
        case "progress" -> w.writeProgress(r.percent());
        default -> {
          w.writeEos(); // a section header: the previous body ended
          bodies++;
        }
      }
    }
    w.writeEos();
    out.flush();
    List<Rec> again = readAll(FragmentingChannel.oneByteAtATime(mine.toByteArray()), bodies + 1);
    assertThat(again.stream().filter(r -> !r.kind().equals("eos")).map(r -> r.kind() + r.device() + r.offset() + r.percent()).toList())
        .isEqualTo(recs.stream().filter(r -> r.kind().length() > 3 || r.kind().equals("zero")).filter(r -> !r.kind().matches("START|PART|END")).map(r -> r.kind() + r.device() + r.offset() + r.percent()).toList());
  }

  private static byte[] small() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes));
    BlockRecordWriter w = new BlockRecordWriter(out);
    w.writeProgress(10);
    w.writeChunk("d", 0, ByteBuffer.allocate(CHUNK));
    w.writeEos();
    out.flush();
    return bytes.toByteArray();
  }

  /** Each corruption ends in a MigrationStreamException naming what is wrong, never a hang. */
  @Test
  void corruptionTable() throws IOException {
    byte[] good = small();
    List<Object[]> table = new ArrayList<>();
    Function<byte[], byte[]> flagsUnknown = b -> { b[7] = 0x10; return b; };
    Function<byte[], byte[]> progressOver100 = b -> { b[5] = 0x10; return b; };
    Function<byte[], byte[]> eosWithValue = b -> { b[b.length - 2] = 0x02; return b; };
    Function<byte[], byte[]> truncatedPayload = b -> java.util.Arrays.copyOf(b, 8 + 8 + 2 + 1000);
    Function<byte[], byte[]> truncatedName = b -> java.util.Arrays.copyOf(b, 8 + 8 + 1);
    Function<byte[], byte[]> noEos = b -> java.util.Arrays.copyOf(b, b.length - 8);
    Function<byte[], byte[]> hugeSector = b -> { b[8] = (byte) 0xff; return b; };
    Function<byte[], byte[]> progressAndBlock = b -> { b[8 + 7] = 0x05; return b; };
    table.add(new Object[] {"unknown flags", flagsUnknown, "unknown block migration flags 0x10"});
    table.add(new Object[] {"progress > 100", progressOver100, "is over 100"});
    table.add(new Object[] {"EOS with value", eosWithValue, "EOS record with a value"});
    table.add(new Object[] {"truncated payload", truncatedPayload, "unexpected end of stream"});
    table.add(new Object[] {"truncated name", truncatedName, "unexpected end of stream"});
    table.add(new Object[] {"no EOS", noEos, "unexpected end of stream"});
    table.add(new Object[] {"sector past any disk", hugeSector, "past any disk"});
    table.add(new Object[] {"progress and block", progressAndBlock, "unknown block migration flags 0x5"});
    for (Object[] row : table) {
      @SuppressWarnings("unchecked")
      byte[] bad = ((Function<byte[], byte[]>) row[1]).apply(good.clone());
      assertThatThrownBy(() -> readAll(Channels.newChannel(new java.io.ByteArrayInputStream(bad)), 1))
          .as((String) row[0])
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining((String) row[2]);
    }
  }

  @Test
  void writerRefusesWhatTheWireCannotCarry() {
    BlockRecordWriter w = new BlockRecordWriter(new MigrationOutput(Channels.newChannel(new ByteArrayOutputStream())));
    assertThatThrownBy(() -> w.writeChunk("d", 0, ByteBuffer.allocate(100))).hasMessageContaining("exactly 1 MiB");
    assertThatThrownBy(() -> w.writeZeroChunk("d", 100)).hasMessageContaining("multiple of 512");
    assertThatThrownBy(() -> w.writeZeroChunk("x".repeat(256), 0)).hasMessageContaining("255");
    assertThatThrownBy(() -> w.writeProgress(101)).hasMessageContaining("101");
  }
}
