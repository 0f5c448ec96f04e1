package dev.ferry.block;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.RunState;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.Incoming;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block migration between two machines in one process: a guest writing its disks during a live
 * block migration, the tail chunk of a 4.5 MiB disk, zero-blocks, incremental, shared storage
 * handover, and cancel / a lost destination during the bulk phase. Every migration ends with the
 * exact comparison (digests cover the disks) and the disk program's check.
 */
@Timeout(120)
class BlockMigrationTest {
  private static final int MIB = 1 << 20;
  @TempDir Path dir;

  /** A machine running the disk program at {@code rate} (chunk records × 1 MiB per second). */
  private static MachineHost host(Path d0, long s0, Path d1, long s1, long rate) {
    Machine.Builder b =
        Machine.builder().memory(8 << 20).program("disk").programOptions(new ProgramOptions(256, rate, 7));
    b.drive("drive0", d0, s0);
    if (d1 != null) {
      b.drive("d1", d1, s1);
    }
    return new MachineHost(b.build());
  }

  private static void await(BooleanSupplier c) throws InterruptedException {
    long end = System.nanoTime() + 60_000_000_000L;
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out");
      }
      Thread.sleep(5);
    }
  }

  private static long passes(MachineHost h) {
    return h.machine().cpu(0).reg(2);
  }

  /** The migrated destination runs on: its guest writes another pass and its disks still check. */
  private static void assertRunsOnWritingItsDisks(MachineHost dst) throws Exception {
    long p = passes(dst);
    dst.startAfterLoad(false);
    await(() -> passes(dst) > p);
    dst.machine().pause();
    assertThat(dst.diskCheck().passed()).isTrue();
  }

  private void migrateWithGuestWriting(String uri, boolean zeroBlocks) throws Exception {
    // drive0 8 MiB, d1 4.5 MiB (its last chunk is half a chunk); 16 records/s, each dirtying 1 MiB
    try (MachineHost src = host(dir.resolve("s0.raw"), 8 * MIB, dir.resolve("s1.raw"), 4 * MIB + MIB / 2, 16L * MIB);
        MachineHost dst = host(dir.resolve("t0.raw"), 8 * MIB, dir.resolve("t1.raw"), 4 * MIB + MIB / 2, 16L * MIB)) {
      src.machine().resume();
      await(() -> passes(src) >= 1); // every chunk holds a record, and the guest keeps writing
      Incoming incoming = Incoming.listen(dst, uri);
      src.migration().setCapabilities(
          Map.of(MigrationCapability.BLOCK, true, MigrationCapability.ZERO_BLOCKS, zeroBlocks, MigrationCapability.RETURN_PATH, true));
      // 32 MiB/s: the bulk phase takes about 0.4 s while the guest writes behind its cursor
      src.migration().setParameters(Map.of("max-bandwidth", 32L << 20));
      long writesBefore = src.machine().cpu(0).reg(4);
      OutgoingMigration out = src.migration().migrate(incoming.uri());
      MigrationStatus end = out.await(60, TimeUnit.SECONDS);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(src.machine().cpu(0).reg(4)).as("the guest wrote during the migration").isGreaterThan(writesBefore);
      BlockStats s = src.block().stats();
      assertThat(s.totalBytes()).isEqualTo(12L * MIB + MIB / 2);
      assertThat(s.bulkCompleted()).isTrue();
      assertThat(s.chunks()).as("bulk + dirty chunks").isGreaterThan(13);
      assertThat(s.remainingBytes()).isZero();
      ExactState.assertSame(src, dst);
      assertThat(dst.diskCheck().passed()).as(dst.diskCheck().toString()).isTrue();
      assertThat(dst.machine().drives()).allMatch(DiskImage::active);
      assertThat(src.machine().drives()).noneMatch(DiskImage::active);
      assertRunsOnWritingItsDisks(dst);
    }
  }

  @Test
  void liveBlockMigrationOverUnixWithTheGuestWritingItsDisks() throws Exception {
    migrateWithGuestWriting("unix:" + dir.resolve("mig.sock"), false);
  }

  @Test
  void liveBlockMigrationOverTcpWithZeroBlocks() throws Exception {
    migrateWithGuestWriting("tcp:127.0.0.1:0", true);
  }

  @Test
  void incrementalSkipsWhatTheBaseHolds() throws Exception {
    // the source wrote 3 of 16 chunks of a fresh image; the destination's fresh image is the base
    try (MachineHost src = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", dir.resolve("s.raw"), 16 * MIB).build());
        MachineHost dst = new MachineHost(Machine.builder().memory(4 << 20).program("idle").drive("drive0", dir.resolve("t.raw"), 16 * MIB).build())) {
      DiskImage d = src.machine().drives().getFirst();
      for (int c : new int[] {0, 5, 15}) {
        ByteBuffer b = ByteBuffer.allocate(4096);
        b.putLong(0, 0x1234_5678L + c).putLong(4088, c);
        d.write((long) c * MIB + 8192, b);
      }
      String uri = "unix:" + dir.resolve("inc.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      src.nextMigrationBlock(false, true); // QMP migrate inc=true
      OutgoingMigration out = src.migration().migrate(uri);
      assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      BlockStats s = src.block().stats();
      assertThat(s.skippedChunks()).isEqualTo(13);
      assertThat(s.transferredBytes()).isEqualTo(3L * MIB);
      ExactState.assertSame(src, dst);
    }
  }

  @Test
  void sharedStorageHandsTheImageOver() throws Exception {
    Path img = dir.resolve("shared.raw");
    try (MachineHost src = host(img, 6 * MIB, null, 0, 64L * MIB);
        MachineHost dst = host(img, 6 * MIB, null, 0, 64L * MIB)) {
      src.machine().resume();
      await(() -> passes(src) >= 1);
      String uri = "unix:" + dir.resolve("shared.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      // the destination does not own the image yet: a write is refused
      DiskImage early = dst.machine().drives().getFirst();
      assertThat(early.active()).isFalse();
      assertThatThrownBy(() -> early.write(0, ByteBuffer.allocate(512)))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("drive 'drive0' is inactive");
      OutgoingMigration out = src.migration().migrate(uri);
      assertThat(out.await(60, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(src.block().stats().transferredBytes()).as("no disk bytes in the stream").isZero();
      ExactState.assertSame(src, dst);
      assertThat(dst.diskCheck().passed()).isTrue();
      DiskImage srcDrive = src.machine().drives().getFirst();
      assertThat(srcDrive.active()).isFalse();
      assertThatThrownBy(() -> srcDrive.write(0, ByteBuffer.allocate(512))).isInstanceOf(IllegalStateException.class);
      assertRunsOnWritingItsDisks(dst);
    }
  }

  @Test
  void anImageThatChangedSizeIsNotTakenOver() throws Exception {
    Path img = dir.resolve("resized.raw");
    try (DiskImage d = DiskImage.open("drive0", img, 2 * MIB)) {
      d.inactivate();
      try (var ch = java.nio.channels.FileChannel.open(img, java.nio.file.StandardOpenOption.WRITE)) {
        ch.truncate(MIB);
      }
      assertThatThrownBy(d::activate).hasMessageContaining("drive 'drive0'").hasMessageContaining("has 1048576 bytes now, expected 2097152");
    }
    assertThatThrownBy(() -> DiskImage.open("drive0", img, 2 * MIB)).hasMessageContaining("has 1048576 bytes, size= says 2097152");
  }

  @Test
  void destinationRefusesAnUnknownDeviceAndAChunkPastItsEnd() throws Exception {
    try (DiskImage d = DiskImage.open("drive0", dir.resolve("x.raw"), MIB + MIB / 2)) {
      BlockLiveState h = new BlockLiveState(java.util.List.of(d));
      dev.ferry.savevm.LiveLoad b = h.openLoad(dev.ferry.savevm.SaveOptions.NONE);
      java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
      dev.ferry.stream.MigrationOutput o = new dev.ferry.stream.MigrationOutput(java.nio.channels.Channels.newChannel(bytes));
      BlockRecordWriter w = new BlockRecordWriter(o);
      byte[] ones = new byte[MIB];
      java.util.Arrays.fill(ones, (byte) 1);
      w.writeChunk("drive0", MIB, ByteBuffer.wrap(ones)); // the tail: half of it is past the end
      w.writeEos();
      w.writeZeroChunk("nope", 0);
      w.writeEos();
      w.writeZeroChunk("drive0", 2 * MIB);
      w.writeEos();
      o.flush();
      dev.ferry.stream.MigrationInput in = dev.ferry.stream.MigrationInput.of(bytes.toByteArray());
      b.load(in, 1, dev.ferry.stream.SectionType.END); // END: waits for the chunk's write
      assertThat(Files.size(d.path())).as("the tail chunk is clamped to the disk's end").isEqualTo(MIB + MIB / 2);
      ByteBuffer got = ByteBuffer.allocate(MIB / 2);
      d.read(MIB, got);
      assertThat(got.array()).containsOnly((byte) 1);
      assertThatThrownBy(() -> b.load(in, 1, dev.ferry.stream.SectionType.PART)).hasMessageContaining("unknown block device 'nope'");
      dev.ferry.stream.MigrationInput in2 = dev.ferry.stream.MigrationInput.of(java.util.Arrays.copyOfRange(bytes.toByteArray(), bytes.size() - 8 - 8 - 7, bytes.size()));
      assertThatThrownBy(() -> b.load(in2, 1, dev.ferry.stream.SectionType.PART)).hasMessageContaining("past the end of drive 'drive0'");
      assertThatThrownBy(() -> b.load(dev.ferry.stream.MigrationInput.of(new byte[8]), 2, dev.ferry.stream.SectionType.PART))
          .hasMessageContaining("block");
      b.close();
    }
  }

  @Test
  void zeroChunksWriteNothingWhereTheDestinationKnowsZerosAndZerosOverData() throws Exception {
    byte[] ones = new byte[MIB];
    java.util.Arrays.fill(ones, (byte) 1);
    Path old = dir.resolve("old.raw");
    byte[] image = new byte[3 * MIB];
    java.util.Arrays.fill(image, (byte) 1);
    Files.write(old, image); // an existing image: its chunks are not known zero
    try (DiskImage fresh = DiskImage.open("fresh", dir.resolve("fresh.raw"), 3 * MIB);
        DiskImage used = DiskImage.open("used", old, 3 * MIB)) {
      assertThat(fresh.isKnownZero(0)).isTrue();
      assertThat(used.isKnownZero(0)).isFalse();
      BlockLiveState b = new BlockLiveState(java.util.List.of(fresh, used));
      java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
      dev.ferry.stream.MigrationOutput o = new dev.ferry.stream.MigrationOutput(java.nio.channels.Channels.newChannel(bytes));
      BlockRecordWriter w = new BlockRecordWriter(o);
      w.writeZeroChunk("fresh", 0); // known zero: nothing written
      w.writeChunk("fresh", MIB, ByteBuffer.allocate(MIB)); // data, but all zeros: nothing written either
      w.writeChunk("fresh", 2 * MIB, ByteBuffer.wrap(ones)); // data
      w.writeZeroChunk("used", 0); // over data: zeros written
      w.writeChunk("used", 2 * MIB, ByteBuffer.allocate(MIB)); // all-zero data over data: zeros written
      w.writeEos();
      o.flush();
      b.load(dev.ferry.stream.MigrationInput.of(bytes.toByteArray()), 1, dev.ferry.stream.SectionType.END);
      b.loadCleanup();
      assertThat(fresh.isKnownZero(0)).isTrue();
      assertThat(fresh.isKnownZero(1)).isTrue();
      assertThat(fresh.isKnownZero(2)).as("data written").isFalse();
      assertThat(used.isKnownZero(0)).as("zeros written").isTrue();
      byte[] f = Files.readAllBytes(fresh.path());
      byte[] u = Files.readAllBytes(old);
      assertThat(java.util.Arrays.copyOfRange(f, 0, 2 * MIB)).containsOnly((byte) 0);
      assertThat(java.util.Arrays.copyOfRange(f, 2 * MIB, 3 * MIB)).containsOnly((byte) 1);
      assertThat(java.util.Arrays.copyOfRange(u, 0, MIB)).containsOnly((byte) 0);
      assertThat(java.util.Arrays.copyOfRange(u, MIB, 2 * MIB)).as("untouched").containsOnly((byte) 1);
      assertThat(java.util.Arrays.copyOfRange(u, 2 * MIB, 3 * MIB)).containsOnly((byte) 0);
      // a write clears the mark: a zero chunk there is written again
      fresh.write(5, ByteBuffer.wrap(new byte[] {7}));
      assertThat(fresh.isKnownZero(0)).isFalse();
      assertThat(fresh.loadWriteZeros(0, MIB)).isTrue();
      assertThat(fresh.loadWriteZeros(0, MIB)).as("known zero again").isFalse();
    }
  }

  @Test
  void aPostcopySwitchWaitsForTheBulkPhase() throws Exception {
    try (MachineHost src = host(dir.resolve("pc-s.raw"), 12 * MIB, null, 0, 16L * MIB);
        MachineHost dst = host(dir.resolve("pc-t.raw"), 12 * MIB, null, 0, 16L * MIB)) {
      src.machine().resume();
      await(() -> passes(src) >= 1);
      src.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true, MigrationCapability.BLOCK, true));
      dst.migration().setCapabilities(Map.of(MigrationCapability.POSTCOPY_RAM, true));
      dst.setPostcopyAutostart(() -> false); // stays paused: compared exactly below
      // slow precopy, tiny downtime limit: without the wait the switch would come at once
      src.migration().setParameters(Map.of("max-bandwidth", 8L << 20, "downtime-limit", 1L));
      AtomicReference<Boolean> bulkDoneAtSwitch = new AtomicReference<>();
      src.migration().addListener(new dev.ferry.migration.MigrationListener() {
        @Override
        public void statusChanged(MigrationStatus from, MigrationStatus to, String reason) {
          if (to == MigrationStatus.POSTCOPY_ACTIVE) {
            bulkDoneAtSwitch.set(src.block().stats().bulkCompleted());
          }
        }
      });
      String uri = "unix:" + dir.resolve("pc.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      OutgoingMigration out = src.migration().migrate(uri);
      src.migration().startPostcopy();
      assertThat(out.await(60, TimeUnit.SECONDS)).as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      assertThat(incoming.failure(60, TimeUnit.SECONDS)).isNull();
      assertThat(out.info().postcopyBytes()).as("it did switch to postcopy").isGreaterThan(0);
      assertThat(bulkDoneAtSwitch.get()).as("the bulk phase was over at the switch").isTrue();
      ExactState.assertSame(src, dst);
      assertThat(dst.diskCheck().passed()).isTrue();
    }
  }

  private void interruptBulk(boolean cancel) throws Exception {
    MachineHost dst = host(dir.resolve("big-dst.raw"), 48 * MIB, null, 0, 32L * MIB);
    boolean dstClosed = false;
    try (MachineHost src = host(dir.resolve("big.raw"), 48 * MIB, null, 0, 32L * MIB)) {
      src.machine().resume();
      await(() -> passes(src) >= 1);
      String uri = "unix:" + dir.resolve("cut.sock");
      Incoming incoming = Incoming.listen(dst, uri);
      src.migration().setCapabilities(Map.of(MigrationCapability.BLOCK, true));
      src.migration().setParameters(Map.of("max-bandwidth", 8L << 20)); // bulk takes ~6 s
      OutgoingMigration out = src.migration().migrate(uri);
      await(() -> src.block().stats().transferredBytes() >= 2L * MIB);
      assertThat(src.block().stats().bulkCompleted()).isFalse();
      if (cancel) {
        src.migration().cancel();
        assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.CANCELLED);
      } else {
        dst.close(); // the destination dies: its end of the socket closes
        dstClosed = true;
        assertThat(out.await(30, TimeUnit.SECONDS)).isEqualTo(MigrationStatus.FAILED);
      }
      try {
        incoming.failure(30, TimeUnit.SECONDS);
      } catch (Exception expected) {
        // the destination's load failed; that is the point
      }
      // the source runs on, owns its disk, and the disk holds exactly what its guest wrote
      assertThat(src.machine().runState()).isEqualTo(RunState.RUNNING);
      assertThat(src.machine().drives()).allMatch(DiskImage::active);
      assertThat(src.machine().drives().getFirst().logging()).isFalse();
      long p = passes(src);
      await(() -> passes(src) > p);
      assertThat(src.diskCheck().passed()).as(src.diskCheck().toString()).isTrue();
    } finally {
      if (!dstClosed) {
        dst.close();
      }
    }
  }

  @Test
  void cancelDuringTheBulkPhaseLeavesTheSourceRunning() throws Exception {
    interruptBulk(true);
  }

  @Test
  void aDestinationThatDiesDuringTheBulkPhaseLeavesTheSourceRunning() throws Exception {
    interruptBulk(false);
  }
}
