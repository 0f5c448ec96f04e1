package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStats;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.migration.PostcopyIncoming;
import dev.ferry.ram.GuestMemory;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.testing.FaultyChannel;
import dev.ferry.testing.Incoming;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.Transports;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Multifd in the engine (QEMU 7.2's wire): normal pages over N extra connections, zero pages and
 * structure on the main stream, a sync at every RAM EOS. Every migration ends with the stopped
 * source's digest equal to the destination's; a guest keeps writing while it migrates.
 */
@Timeout(120)
class MultifdMigrationTest {
  @TempDir Path dir;

  static MachineHost stressHost(long memory) {
    ProgramOptions slow = ProgramOptions.defaults().withStressRateBytesPerSec(64L << 20).withPagesPerStep(64);
    return new MachineHost(
        Machine.builder().memory(memory).program("stress").programOptions(slow).serial(new ByteArrayOutputStream()).build());
  }

  static void multifdOn(MachineHost h, int channels, String compression) {
    h.migration().setCapabilities(Map.of(MigrationCapability.MULTIFD, true));
    h.migration().setParameters(Map.of("multifd-channels", (long) channels, "multifd-compression", compression));
  }

  /** Each destination on a thread of its own (the common pool has one thread on two cores). */
  static Incoming listen(MachineHost dst, String uri) throws Exception {
    return Incoming.listen(dst, uri, r -> Thread.ofPlatform().name("incoming").daemon().start(r));
  }

  private String uri(String transport, String name) {
    return transport.equals("unix") ? "unix:" + dir.resolve(name + ".sock") : "tcp:127.0.0.1:0";
  }

  @ParameterizedTest(name = "{0} {1} {2} channels")
  @CsvSource({"unix, none, 2", "tcp, none, 3", "unix, zlib, 2", "tcp, zlib, 1", "unix, zstd, 4", "tcp, zstd, 2"})
  void writingGuestArrivesExactly(String transport, String compression, int channels) throws Exception {
    long memory = 32L << 20;
    try (MachineHost src = stressHost(memory);
        MachineHost dst = stressHost(memory)) {
      multifdOn(src, channels, compression);
      multifdOn(dst, channels, compression);
      src.machine().resume();
      FreshRamMigrationTest.awaitTrue(() -> src.machine().cpu(0).steps() > 20);
      Incoming incoming = listen(dst, uri(transport, "mf"));
      OutgoingMigration out = src.migration().migrate(incoming.uri());
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      incoming.await(60, TimeUnit.SECONDS);
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      MigrationStats.Snapshot s = out.info();
      // 7.2's count: 1344 per packet plus 4096 per page, counted once, inside transferred
      assertThat(s.multifdBytes()).isGreaterThanOrEqualTo(s.normalPages() * MultifdPacket.PAGE_SIZE).isPositive();
      assertThat(s.transferredBytes()).isGreaterThan(s.multifdBytes());
      assertThat(s.normalPages()).isPositive();
      FreshRamMigrationTest.assertSameState(src, dst);
    }
  }

  @Test
  void parametersHaveQemuDefaultsChecksAndTexts() throws Exception {
    try (MachineHost h = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build())) {
      var p = h.migration().parameters();
      assertThat(p.multifdChannels()).isEqualTo(2);
      assertThat(p.multifdCompression().qmpName()).isEqualTo("none");
      assertThat(p.multifdZlibLevel()).isEqualTo(1);
      assertThat(p.multifdZstdLevel()).isEqualTo(1);
      assertThatThrownBy(() -> h.migration().setParameters(Map.of("multifd-channels", 0L)))
          .hasMessage("Parameter 'multifd_channels' expects a value between 1 and 255");
      assertThatThrownBy(() -> h.migration().setParameters(Map.of("multifd-compression", "lz4")))
          .hasMessage("Parameter 'multifd-compression' does not accept value 'lz4'");
      assertThatThrownBy(() -> h.migration().setParameters(Map.of("multifd-zstd-level", 21L)))
          .hasMessage("Parameter 'multifd_zstd_level' expects a value between 0 and 20");
      assertThatThrownBy(() -> h.migration().setParameters(Map.of("multifd-zlib-level", 10L)))
          .hasMessage("Parameter 'multifd_zlib_level' expects a value between 0 and 9");
      h.migration().setParameters(Map.of("multifd-zstd-level", 5L));
      assertThat(h.migration().parameters().toMap()).containsEntry("multifd-zstd-level", 5);
      Map<MigrationCapability, Boolean> both = new HashMap<>();
      both.put(MigrationCapability.MULTIFD, true);
      both.put(MigrationCapability.XBZRLE, true);
      assertThatThrownBy(() -> h.migration().setCapabilities(both)).hasMessage("Multifd is not compatible with xbzrle");
      h.migration().setCapabilities(Map.of(MigrationCapability.MULTIFD, true));
      assertThatThrownBy(() -> h.migration().migrate("exec:cat > " + dir.resolve("x")))
          .hasMessageStartingWith("multifd is not supported by current protocol: exec:");
      assertThat(h.migration().outgoingState().status()).isEqualTo(MigrationStatus.NONE);
    }
  }

  /** A destination with multifd on, and a hand-made source: the main connection, then one channel. */
  private Throwable destinationGets(byte[] init) throws Exception {
    try (MachineHost dst = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build())) {
      multifdOn(dst, 2, "none");
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      try (MigrationChannel main = Transports.connect(incoming.uri());
          MigrationChannel channel = Transports.connect(incoming.uri())) {
        main.write(ByteBuffer.wrap(new byte[] {'Q', 'E', 'V', 'M', 0, 0, 0, 3}));
        ByteBuffer b = ByteBuffer.wrap(init);
        while (b.hasRemaining()) {
          channel.write(b);
        }
        Throwable t = incoming.failure(30, TimeUnit.SECONDS);
        assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(dst.migration().incomingState().errorDesc()).isEqualTo(t.getMessage()).doesNotContain("\n");
        return t;
      }
    }
  }

  /** The source ended {@code sourceEnd} and runs on; the destination's load failed. */
  private static void sourceRunsOnDestinationFailed(
      MachineHost src, MachineHost dst, OutgoingMigration out, Incoming incoming, MigrationStatus sourceEnd)
      throws Exception {
    assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(sourceEnd);
    assertThat(src.machine().isRunning()).isTrue();
    assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNotNull();
    assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.FAILED);
  }

  private static byte[] init(byte[] uuid, int id) {
    ByteBuffer b = ByteBuffer.allocate(MultifdInit.LENGTH);
    new MultifdInit(uuid, id).write(b);
    return b.array();
  }

  @Test
  void aChannelWithAWrongMagicFailsTheDestinationInOneLine() throws Exception {
    byte[] bad = init(new byte[16], 0);
    bad[0] ^= (byte) 0xff;
    assertThat(destinationGets(bad).getMessage())
        .startsWith("failed to receive packet via multifd channel 0 (")
        .contains("multifd: received packet magic ee223344 expected 11223344");
  }

  @Test
  void aChannelWithAnotherVmsUuidFailsTheDestinationInOneLine() throws Exception {
    byte[] uuid = java.util.HexFormat.of().parseHex("123456789abcdef01122334455667788");
    assertThat(destinationGets(init(uuid, 1)).getMessage())
        .contains("multifd: received uuid '12345678-9abc-def0-1122-334455667788' and expected uuid"
            + " '00000000-0000-0000-0000-000000000000' for channel 1");
  }

  @Test
  void aChannelIdBeyondTheChannelsFailsTheDestination() throws Exception {
    assertThat(destinationGets(init(new byte[16], 2)).getMessage())
        .contains("multifd: received channel id 2, but multifd-channels is 2 (ids 0 to 1)");
  }

  /** A packet past its limits (more pages than it has room for) ends the load in one line, no hang. */
  @Test
  void aPacketPastItsLimitsFailsTheDestinationInOneLine() throws Exception {
    try (MachineHost dst = new MachineHost(Machine.builder().memory(4L << 20).program("idle").build())) {
      multifdOn(dst, 2, "none");
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      try (MigrationChannel main = Transports.connect(incoming.uri());
          MigrationChannel c0 = Transports.connect(incoming.uri());
          MigrationChannel c1 = Transports.connect(incoming.uri())) {
        main.write(ByteBuffer.wrap(new byte[] {'Q', 'E', 'V', 'M', 0, 0, 0, 3})); // and then nothing: the load waits
        c0.write(ByteBuffer.wrap(init(new byte[16], 0)));
        c1.write(ByteBuffer.wrap(init(new byte[16], 1)));
        ByteBuffer p = ByteBuffer.allocate(MultifdPacket.LENGTH);
        p.putInt(MultifdPacket.MAGIC).putInt(MultifdPacket.VERSION).putInt(0).putInt(128).putInt(129);
        p.clear();
        while (p.hasRemaining()) {
          c1.write(p);
        }
        Throwable t = incoming.failure(30, TimeUnit.SECONDS);
        assertThat(t.getMessage())
            .startsWith("multifd channel 1 (")
            .contains("multifd: received packet with 129 pages and expected maximum pages are 128")
            .doesNotContain("\n");
        assertThat(dst.migration().incomingState().status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(dst.migration().incomingState().errorDesc()).isEqualTo(t.getMessage());
      }
    }
  }

  /**
   * A channel cut in the middle of a packet's pages (which the destination reads straight into RAM):
   * the destination fails in one line naming the channel and the end of its stream.
   */
  @Test
  void aChannelCutMidPacketFailsTheDestinationInOneLine() throws Exception {
    long memory = 16L << 20;
    try (MachineHost src = new MachineHost(Machine.builder().memory(memory).program("idle").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(memory).program("idle").build())) {
      try (GuestMemory m = src.machine().ram().openMemory()) {
        for (long page = 0; page < memory / 4096; page++) {
          m.fillPage(0, page, (byte) (page * 5 + 1));
        }
      }
      multifdOn(src, 2, "none");
      multifdOn(dst, 2, "none");
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      String uri = incoming.uri();
      AtomicInteger opened = new AtomicInteger();
      // channel 1: its init, its setup SYNC, a full packet's header and 10000 bytes of its pages
      long cut = MultifdInit.LENGTH + 2L * MultifdPacket.LENGTH + 10_000;
      src.migration().beforeStart(o -> o.multifdConnector(() -> {
        MigrationChannel c = Transports.connect(uri);
        return opened.getAndIncrement() == 1 ? new CutChannel(c, cut) : c;
      }));
      OutgoingMigration out = src.migration().migrate(uri);
      Throwable t = incoming.failure(60, TimeUnit.SECONDS);
      // the source ends either way: failed when the destination shut the main connection in time,
      // completed when it had written everything before (no return path: it cannot know)
      assertThat(out.await(60, TimeUnit.SECONDS)).isIn(MigrationStatus.FAILED, MigrationStatus.COMPLETED);
      assertThat(t.getMessage()).startsWith("multifd channel ").contains("unexpected end of stream")
          .doesNotContain("\n");
      assertThat(dst.migration().incomingState().errorDesc()).isEqualTo(t.getMessage());
    }
  }

  /**
   * A channel whose connection ends (FIN) after {@code cut} bytes while the source goes on as if its
   * writes went out: the destination sees the cut before anything else goes wrong.
   */
  private static final class CutChannel extends dev.ferry.transport.ForwardingMigrationChannel {
    private long left;

    CutChannel(MigrationChannel raw, long cut) {
      super(raw);
      this.left = cut;
    }

    @Override
    public int read(ByteBuffer dst) throws java.io.IOException {
      return raw.read(dst);
    }

    @Override
    public int write(ByteBuffer src) throws java.io.IOException {
      return (int) write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public long write(ByteBuffer[] srcs, int off, int len) throws java.io.IOException {
      long done = 0;
      for (int i = off; i < off + len; i++) {
        ByteBuffer b = srcs[i];
        while (b.hasRemaining()) {
          if (left <= 0) {
            done += b.remaining(); // swallowed after the cut
            b.position(b.limit());
            break;
          }
          ByteBuffer piece = b.slice(b.position(), (int) Math.min(b.remaining(), left));
          int k = raw.write(piece);
          b.position(b.position() + k);
          left -= k;
          done += k;
          if (left == 0) {
            raw.shutdown(); // the destination reads the end of the stream here
          }
        }
      }
      return done;
    }

    @Override
    public boolean isShutdown() {
      return false;
    }
  }

  /** Both sides must use the same multifd-channels: a source with more fails at once, not at a SYNC. */
  @Test
  void moreChannelsOnTheSourceThanOnTheDestinationFailsBothSides() throws Exception {
    long memory = 16L << 20;
    try (MachineHost src = stressHost(memory);
        MachineHost dst = stressHost(memory)) {
      multifdOn(src, 3, "none");
      multifdOn(dst, 2, "none");
      src.machine().resume();
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      OutgoingMigration out = src.migration().migrate(incoming.uri());
      sourceRunsOnDestinationFailed(src, dst, out, incoming, MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc()).contains("multifd channel 2").doesNotContain("\n");
    }
  }

  /**
   * A channel that breaks mid-migration fails it on both sides: the source runs on with its RAM as
   * it was (an idle guest, so its RAM digest before and after must be equal), the destination FAILED.
   */
  @Test
  void aChannelCutMidMigrationFailsBothSidesAndTheSourceRunsOnUnchanged() throws Exception {
    long memory = 32L << 20;
    try (MachineHost src = new MachineHost(Machine.builder().memory(memory).program("idle").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(memory).program("idle").build())) {
      try (GuestMemory m = src.machine().ram().openMemory()) {
        for (long page = 0; page < memory / 4096; page += 3) {
          m.fillPage(0, page, (byte) (page * 7 + 1));
        }
      }
      src.machine().resume();
      MemoryDigest before = src.memoryDigest();
      multifdOn(src, 2, "none");
      multifdOn(dst, 2, "none");
      // slow enough that the cut comes while pages still flow
      src.migration().setParameters(Map.of("max-bandwidth", 16L << 20));
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      String uri = incoming.uri();
      AtomicInteger opened = new AtomicInteger();
      src.migration().beforeStart(o -> o.multifdConnector(() -> {
        MigrationChannel c = Transports.connect(uri);
        // channel 1 breaks after 256 KiB of its stream
        return opened.getAndIncrement() == 1 ? FaultyChannel.failAfter(c, FaultyChannel.Direction.WRITE, 256 << 10) : c;
      }));
      OutgoingMigration out = src.migration().migrate(uri);
      sourceRunsOnDestinationFailed(src, dst, out, incoming, MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc()).contains("multifd channel 1");
      // the idle guest's RAM is as before (its cpu and timer state moved on, as a running guest's do)
      assertThat(src.memoryDigest().ram()).isEqualTo(before.ram());
    }
  }

  /** migrate_cancel while pages flow on the channels: cancelled, the source runs on, the destination fails. */
  @Test
  void aCancelWhilePagesFlowOnTheChannelsLeavesTheSourceRunning() throws Exception {
    long memory = 32L << 20;
    try (MachineHost src = stressHost(memory);
        MachineHost dst = stressHost(memory)) {
      multifdOn(src, 2, "zlib");
      multifdOn(dst, 2, "zlib");
      src.migration().setParameters(Map.of("max-bandwidth", 4L << 20));
      src.machine().resume();
      // past its first pass: its pages are non-zero (multifd's), dirtied faster than 4 MiB/s sends them
      FreshRamMigrationTest.awaitTrue(() -> src.machine().cpu(0).reg(2) >= 1);
      Incoming incoming = listen(dst, "tcp:127.0.0.1:0");
      OutgoingMigration out = src.migration().migrate(incoming.uri());
      FreshRamMigrationTest.awaitTrue(() -> out.info().multifdBytes() > (256L << 10));
      src.migration().cancel();
      sourceRunsOnDestinationFailed(src, dst, out, incoming, MigrationStatus.CANCELLED);
    }
  }

  /** Postcopy: multifd carries the precopy phase; after the switch the main stream carries all. */
  @Test
  void postcopyAfterAMultifdPrecopyPhaseArrivesExactly() throws Exception {
    long memory = 32L << 20;
    try (MachineHost src = stressHost(memory);
        MachineHost dst = stressHost(memory)) {
      multifdOn(src, 2, "none");
      multifdOn(dst, 2, "none");
      src.machine().resume();
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      src.migration().setParameters(Map.of("max-bandwidth", 8L << 20, "downtime-limit", 1L));
      dst.setPostcopyAutostart(() -> false); // held after RUN until the last page arrived: exact check
      // past its first pass: every page non-zero (multifd's) and dirtied faster than 8 MiB/s sends it
      FreshRamMigrationTest.awaitTrue(() -> src.machine().cpu(0).reg(2) >= 1);
      Incoming incoming = listen(dst, "unix:" + dir.resolve("pc.sock"));
      OutgoingMigration out = src.migration().migrate(incoming.uri());
      FreshRamMigrationTest.awaitTrue(() -> out.info().multifdBytes() > (1L << 20));
      src.migration().startPostcopy();
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(out.guestMovedAway()).isTrue();
      MigrationStats.Snapshot s = out.info();
      assertThat(s.postcopyBytes()).isPositive();
      assertThat(s.multifdBytes()).isPositive();
      PostcopyIncoming pc = dst.migration().incoming().postcopy();
      assertThat(pc.missingPages()).isZero();
      PostcopyMigrationTest.assertSameRamAndCpus(src, dst);
    }
  }
}
