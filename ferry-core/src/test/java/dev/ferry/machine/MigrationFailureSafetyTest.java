package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.FaultyChannel;
import dev.ferry.testing.MemoryChannel;
import dev.ferry.testing.PipeConnection;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 4 item 4, in-process: cancel at any point, a dropped connection at seeded random points,
 * and a corrupt or truncated incoming stream all leave both sides safe. Seeds: printed, and taken
 * from {@code -Dferry.seed=N}.
 */
@Timeout(300)
class MigrationFailureSafetyTest {
  private static final long MEMORY = 4 << 20;
  private static final ProgramOptions OPTIONS = ProgramOptions.defaults().withPagesPerStep(64);

  @TempDir Path dir;

  static long seed() {
    String s = System.getProperty("ferry.seed");
    long seed = s != null && !s.isBlank() ? Long.parseLong(s.strip()) : System.nanoTime();
    System.out.println("MigrationFailureSafetyTest seed: " + seed + " (rerun with -Dferry.seed=" + seed + ")");
    return seed;
  }

  static MachineHost stressHost() {
    return new MachineHost(Machine.builder().memory(MEMORY).program("stress").programOptions(OPTIONS).build());
  }

  /** The source guest makes progress: its pass counter (r2) grows, and the pattern checks out. */
  static void assertRunsOnIntact(MachineHost src) throws InterruptedException {
    Machine m = src.machine();
    assertThat(m.isRunning()).as("source run state " + m.runState()).isTrue();
    long passes = m.cpu(0).reg(2);
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (m.cpu(0).reg(2) < passes + 2 && System.nanoTime() < deadline) {
      Thread.sleep(2);
    }
    m.pause();
    assertThat(m.cpu(0).reg(2)).as("passes").isGreaterThanOrEqualTo(passes + 2);
    StressCheck.Result r = StressCheck.check(m);
    assertThat(r.passed()).as(r.toString()).isTrue();
    m.resume();
  }

  /** A destination loading from {@code c} in the background; closes {@code c} when done. */
  record Destination(MachineHost host, CompletableFuture<Throwable> result) {
    static Destination start(MigrationChannel c) {
      MachineHost h = stressHost();
      CompletableFuture<Throwable> f =
          CompletableFuture.supplyAsync(
              () -> {
                try (c) {
                  h.incoming(c);
                  return null;
                } catch (Throwable t) {
                  return t;
                }
              });
      return new Destination(h, f);
    }

    Throwable await() throws Exception {
      return result.get(60, TimeUnit.SECONDS);
    }
  }

  /** Migrates {@code src} to a fresh destination and checks that it completes. */
  static void migrateSuccessfully(MachineHost src) throws Exception {
    PipeConnection[] p = PipeConnection.pair();
    Destination dst = Destination.start(p[1]);
    try (MachineHost d = dst.host()) {
      OutgoingMigration o = src.migration().migrate(() -> p[0]);
      MigrationStatus end = o.await(60, TimeUnit.SECONDS);
      assertThat(end).as(String.valueOf(src.migration().outgoingState().errorDesc())).isEqualTo(MigrationStatus.COMPLETED);
      assertThat(dst.await()).isNull();
      ExactState.assertSame(src, d);
      assertThat(StressCheck.check(d.machine()).passed()).isTrue();
      d.startAfterLoad(false);
      assertThat(d.machine().isRunning()).isTrue();
    }
  }

  /** Delegates to a channel, and runs {@code action} once on the first write that {@code when} accepts. */
  static final class TriggerChannel implements MigrationChannel {
    private final MigrationChannel inner;
    private final Function<Long, Boolean> when;
    private final Runnable action;
    private long written;
    private boolean fired;

    TriggerChannel(MigrationChannel inner, Function<Long, Boolean> when, Runnable action) {
      this.inner = inner;
      this.when = when;
      this.action = action;
    }

    private void maybeFire() {
      if (!fired && when.apply(written)) {
        fired = true;
        action.run();
      }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return (int) write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public long write(ByteBuffer[] srcs, int off, int len) throws IOException {
      maybeFire();
      long n = inner.write(srcs, off, len);
      written += n;
      return n;
    }

    @Override public int read(ByteBuffer dst) throws IOException { return inner.read(dst); }
    @Override public boolean supportsReturnPath() { return inner.supportsReturnPath(); }
    @Override public void shutdown() { inner.shutdown(); }
    @Override public boolean isShutdown() { return inner.isShutdown(); }
    @Override public String peerDescription() { return inner.peerDescription(); }
    @Override public boolean isOpen() { return inner.isOpen(); }
    @Override public void close() throws IOException { inner.close(); }
  }

  // ---------------------------------------------------------------- (a) cancel

  enum CancelPoint {
    CONNECT, SETUP, ACTIVE_EARLY, ACTIVE_LATE, COMPLETION
  }

  private void cancelAt(MachineHost src, CancelPoint point, boolean returnPath) throws Exception {
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, returnPath));
    PipeConnection[] p = PipeConnection.pair();
    Destination dst = Destination.start(p[1]);
    AtomicReference<OutgoingMigration> mig = new AtomicReference<>();
    Function<Long, Boolean> when =
        switch (point) {
          case CONNECT, SETUP -> n -> true; // first write: the stream header
          case ACTIVE_EARLY -> n -> n > MEMORY / 8;
          case ACTIVE_LATE -> n -> n > MEMORY * 3 / 4;
          case COMPLETION -> n -> src.migration().outgoingState().status() == MigrationStatus.DEVICE;
        };
    OutgoingMigration o =
        src.migration()
            .migrate(
                () -> {
                  if (point == CancelPoint.CONNECT) {
                    src.migration().cancel();
                  }
                  return new TriggerChannel(p[0], when, () -> src.migration().cancel());
                });
    mig.set(o);
    MigrationStatus end = o.await(60, TimeUnit.SECONDS);
    assertThat(end).as(point + ": " + src.migration().outgoingState().errorDesc()).isEqualTo(MigrationStatus.CANCELLED);
    try (MachineHost d = dst.host()) {
      Throwable t = dst.await();
      assertThat(t).as(point + ": destination error").isNotNull();
      assertThat(d.migration().incomingState().status()).isEqualTo(MigrationStatus.FAILED);
      assertThat(d.machine().isRunning()).isFalse();
    }
    assertRunsOnIntact(src);
  }

  @Test
  void cancelAtEveryPhaseLeavesTheSourceRunningAndAMigrationCompletesAfterwards() throws Exception {
    try (MachineHost src = stressHost()) {
      src.machine().resume();
      for (CancelPoint point : CancelPoint.values()) {
        for (boolean rp : new boolean[] {false, true}) {
          cancelAt(src, point, rp);
        }
      }
      migrateSuccessfully(src);
    }
  }

  // ---------------------------------------------------------------- (b) dropped connection

  private void dropOnce(MachineHost src, Random rnd) throws Exception {
    long offset = rnd.nextLong(MEMORY + (MEMORY >> 4));
    boolean sourceSide = rnd.nextBoolean();
    boolean returnPath = rnd.nextBoolean();
    String what = (sourceSide ? "source write fails" : "destination read fails") + " after " + offset + " bytes, return path " + returnPath;
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, returnPath));
    PipeConnection[] p = PipeConnection.pair();
    MigrationChannel srcSide = sourceSide ? FaultyChannel.failAfter(p[0], FaultyChannel.Direction.WRITE, offset) : p[0];
    MigrationChannel dstSide = sourceSide ? p[1] : FaultyChannel.failAfter(p[1], FaultyChannel.Direction.READ, offset);
    Destination dst = Destination.start(dstSide);
    OutgoingMigration o = src.migration().migrate(() -> srcSide);
    MigrationStatus end = o.await(60, TimeUnit.SECONDS);
    try (MachineHost d = dst.host()) {
      Throwable t = dst.await();
      System.out.println("  " + what + ": source " + end + " (" + src.migration().outgoingState().errorDesc() + "), destination " + t);
      if (end == MigrationStatus.COMPLETED) {
        // the fault lay beyond the end of the stream
        assertThat(t).as(what).isNull();
        assertThat(((FaultyChannel) (sourceSide ? srcSide : dstSide)).tripped()).as(what).isFalse();
        ExactState.assertSame(src, d);
        src.machine().resume(); // as 'cont' after a migration
        return;
      }
      assertThat(end).as(what).isEqualTo(MigrationStatus.FAILED);
      assertThat(src.migration().outgoingState().errorDesc()).as(what).isNotBlank();
      assertThat(t).as(what).isNotNull();
      assertThat(d.machine().isRunning()).as(what).isFalse();
    }
    assertRunsOnIntact(src);
    migrateSuccessfully(src);
    src.machine().resume();
  }

  @Test
  void droppedConnectionAtRandomPointsFailsSafely() throws Exception {
    Random rnd = new Random(seed());
    try (MachineHost src = stressHost()) {
      src.machine().resume();
      for (int i = 0; i < 4; i++) {
        dropOnce(src, rnd);
      }
    }
  }

  @Test
  @Tag("slow")
  void droppedConnectionSweep() throws Exception {
    Random rnd = new Random(seed());
    try (MachineHost src = stressHost()) {
      src.machine().resume();
      for (int i = 0; i < 40; i++) {
        dropOnce(src, rnd);
      }
    }
  }

  // ---------------------------------------------------------------- (c) corrupt / truncated stream

  private byte[] validStream() throws Exception {
    Path file = dir.resolve("valid.ferry");
    try (MachineHost src = stressHost()) {
      src.machine().resume();
      Thread.sleep(20);
      src.save(file);
    }
    return Files.readAllBytes(file);
  }

  /** Feeds {@code channel} to a fresh destination; returns the failure (asserting the safety rules) or null. */
  private static Throwable feed(MigrationChannel channel, String what) throws Exception {
    try (MachineHost d = stressHost()) {
      Throwable t = null;
      try {
        d.incoming(channel);
      } catch (Throwable e) {
        t = e;
      }
      if (t != null) {
        assertThat(t).as(what).isInstanceOf(MigrationStreamException.class);
        assertThat(t.getMessage()).as(what).isNotBlank();
        assertThat(d.migration().incomingState().status()).as(what).isEqualTo(MigrationStatus.FAILED);
      }
      assertThat(d.machine().isRunning()).as(what).isFalse();
      assertThat(d.machine().runState()).as(what).isNotEqualTo(RunState.RUNNING);
      return t;
    }
  }

  private void corruptOnce(byte[] stream, Random rnd) throws Exception {
    long off = rnd.nextLong(stream.length);
    String what = "truncated at " + off + " of " + stream.length;
    Throwable t = feed(FaultyChannel.truncateAt(new MemoryChannel(stream, false), FaultyChannel.Direction.READ, off), what);
    assertThat(t).as(what).isNotNull();
    assertThat(t.getMessage()).as(what).containsIgnoringCase("offset");
    // a flipped bit in the framing (header, configuration, first RAM records) is always caught
    long head = rnd.nextLong(Math.min(40, stream.length));
    int mask = 1 << rnd.nextInt(8);
    what = "bit flip 0x" + Integer.toHexString(mask) + " at " + head;
    t = feed(FaultyChannel.flip(new MemoryChannel(stream, false), FaultyChannel.Direction.READ, head, mask), what);
    assertThat(t).as(what).isNotNull();
    // anywhere: caught, or (inside page data) loaded; never another failure, never a started machine
    long any = rnd.nextLong(stream.length);
    t = feed(FaultyChannel.flip(new MemoryChannel(stream, false), FaultyChannel.Direction.READ, any, mask), "bit flip at " + any);
    System.out.println("  bit flip at " + any + ": " + (t == null ? "loaded" : t.getMessage()));
  }

  @Test
  void corruptOrTruncatedStreamFailsTheDestinationWithoutStartingIt() throws Exception {
    byte[] stream = validStream();
    Random rnd = new Random(seed());
    for (int i = 0; i < 12; i++) {
      corruptOnce(stream, rnd);
    }
  }

  @Test
  @Tag("slow")
  void corruptionSweep() throws Exception {
    byte[] stream = validStream();
    Random rnd = new Random(seed());
    for (int i = 0; i < 200; i++) {
      corruptOnce(stream, rnd);
    }
  }
}
