package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.ram.GuestMemory;
import dev.ferry.ram.GuestRam;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLiveState;
import dev.ferry.ram.RamLoadOptions;
import dev.ferry.ram.RamLoader;
import dev.ferry.ram.RamRecordWriter;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateLoader;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.testing.PipeConnection;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The destination's software demand paging, driven by hand: guest threads touch missing pages and
 * park, the test reads their requests from the return path and feeds pages to the loader as a
 * source would (in any order, twice, racing).
 */
@Timeout(60)
class PostcopyIncomingTest {
  record Request(String block, long start, long length) {}

  GuestRam ram;
  RamLoader loader;
  PostcopyIncoming pc;
  PipeConnection[] pair;
  final BlockingQueue<Request> requests = new LinkedBlockingQueue<>();
  volatile Thread vcpu;
  Thread rpReader;

  @BeforeEach
  void setUp() throws IOException {
    ram = new GuestRam(List.of(RamBlock.allocate("ram", 1 << 20), RamBlock.allocate("huge", 4 << 20, 2 << 20)));
    loader = new RamLoader(RamBlockResolver.of(ram.blocks()), RamLoadOptions.defaults());
    pc = new PostcopyIncoming(ram, () -> loader, t -> t == vcpu ? 0 : -1, 1);
    pair = PipeConnection.pair();
    ReturnPath.Reader reader =
        new ReturnPath.Reader(
            new MigrationInput(pair[0]),
            new ReturnPath.Handler() {
              @Override
              public void shut(long status) {}

              @Override
              public void requestPages(String blockName, long start, long length) {
                requests.add(new Request(blockName, start, length));
              }
            });
    rpReader =
        Thread.ofPlatform().daemon().start(() -> {
          try {
            while (!reader.readOne()) {
              // requests
            }
          } catch (IOException e) {
            // the test ended
          }
        });
    pc.advise(new StreamCommand.PostcopyAdvise(0x201000, 4096), 0);
  }

  @AfterEach
  void tearDown() {
    pair[0].shutdown();
    pair[1].shutdown();
    ram.close();
  }

  void listenAndRun() throws IOException {
    pc.listen(new ReturnPath.Writer(new MigrationOutput(pair[1])), 0);
    pc.run(0);
  }

  /** Feeds one page record (PAGE with {@code content}, or ZERO when null) to the loader. */
  void feed(String block, long offset, byte[] content) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes))) {
      RamRecordWriter w = new RamRecordWriter(out);
      RamBlock b = ram.block(block);
      if (content == null) {
        w.writeZeroPage(b, offset);
      } else {
        w.writePageCopy(b, offset, MemorySegment.ofArray(content));
      }
      w.writeEos();
      out.flush();
    }
    loader.loadChunk(MigrationInput.of(bytes.toByteArray()));
  }

  static byte[] page(int seed) {
    byte[] p = new byte[4096];
    for (int i = 0; i < p.length; i++) {
      p[i] = (byte) (seed + i * 7);
    }
    return p;
  }

  /** Starts a guest thread running {@code access} on its own memory handle. */
  CompletableFuture<Long> guest(java.util.function.ToLongFunction<GuestMemory> access, boolean isVcpu) {
    CompletableFuture<Long> f = new CompletableFuture<>();
    Thread t =
        Thread.ofPlatform().unstarted(() -> {
          try (GuestMemory m = ram.openMemory()) {
            m.enterStep();
            try {
              f.complete(access.applyAsLong(m));
            } finally {
              m.exitStep();
            }
          } catch (Throwable e) {
            f.completeExceptionally(e);
          }
        });
    if (isVcpu) {
      vcpu = t;
    }
    t.start();
    return f;
  }

  static void awaitParked(CompletableFuture<?> f, long faults, PostcopyIncoming pc) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (pc.faults() < faults) {
      assertThat(f).isNotDone();
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the guest thread did not fault");
      }
      Thread.sleep(1);
    }
  }

  @Test
  void aWriteToAMissingPageWaitsAndLandsOnTheReceivedContent() throws Exception {
    listenAndRun();
    CompletableFuture<Long> w =
        guest(m -> {
          m.putByte(0, 0x1000 + 5, (byte) 0x77);
          return 0L;
        }, true);
    Request r = requests.poll(20, TimeUnit.SECONDS);
    assertThat(r).isEqualTo(new Request("ram", 0x1000, 0x1000));
    awaitParked(w, 1, pc);
    System.gc(); // a parked vCPU is safepoint-safe: GC completes while it waits
    assertThat(w).isNotDone();
    byte[] content = page(3);
    feed("ram", 0x1000, content);
    w.get(20, TimeUnit.SECONDS);
    content[5] = 0x77;
    assertThat(ram.block("ram").targetPage(0x1000).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(content);
    // the same page again (a request raced the background scan): dropped, the guest's write stays
    feed("ram", 0x1000, page(9));
    assertThat(loader.postcopyDuplicates()).isEqualTo(1);
    assertThat(ram.block("ram").targetPage(0x1000).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(content);
    assertThat(pc.vcpuBlocktimeMs()).hasSize(1);
    assertThat(pc.faultLatencyNs().getTotalCount()).isEqualTo(1);
    assertThat(requests).isEmpty();
  }

  @Test
  void twoThreadsOnOnePageSendOneRequestAndBothSeeThePage() throws Exception {
    listenAndRun();
    CompletableFuture<Long> a = guest(m -> m.getLong(0, 0x2000 + 8), true);
    CompletableFuture<Long> b = guest(m -> m.getLong(0, 0x2000 + 16), false);
    awaitParked(a, 2, pc);
    assertThat(requests.poll(20, TimeUnit.SECONDS)).isEqualTo(new Request("ram", 0x2000, 0x1000));
    byte[] content = page(11);
    feed("ram", 0x2000, content);
    MemorySegment s = MemorySegment.ofArray(content);
    assertThat(a.get(20, TimeUnit.SECONDS)).isEqualTo(s.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 8));
    assertThat(b.get(20, TimeUnit.SECONDS)).isEqualTo(s.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 16));
    assertThat(pc.requestsSent()).isEqualTo(1);
    assertThat(requests.poll(100, TimeUnit.MILLISECONDS)).isNull();
  }

  @Test
  void aHugePageIsRequestedWholeAndPlacedOnlyWhenAllOfItArrived() throws Exception {
    listenAndRun();
    CompletableFuture<Long> r = guest(m -> m.getByte(1, 0x200000 + 0x1234 + 3), true);
    assertThat(requests.poll(20, TimeUnit.SECONDS)).isEqualTo(new Request("huge", 0x200000, 0x200000));
    for (int i = 0; i < 511; i++) {
      feed("huge", 0x200000 + i * 4096L, page(i));
      assertThat(r).isNotDone();
    }
    assertThat(ram.block("huge").memory().get(ValueLayout.JAVA_BYTE, 0x200000 + 5)).isZero(); // not placed yet
    feed("huge", 0x200000 + 511 * 4096L, page(511));
    assertThat(r.get(20, TimeUnit.SECONDS)).isEqualTo((long) page(1)[0x234 + 3]);
  }

  @Test
  void aPageFromAnotherHostPageInTheMiddleOfAHugePageIsAnError() throws Exception {
    listenAndRun();
    feed("huge", 0, page(0));
    assertThatThrownBy(() -> feed("huge", 0x200000, page(1)))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("Non-same host page detected");
  }

  @Test
  void corruptCommandsAreOneLineErrors() throws Exception {
    assertThatThrownBy(() -> pc.discard(new StreamCommand.RamDiscard("ram", List.of(new StreamCommand.Range(0xFF000, 0x2000))), 7))
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("past the end of block 'ram'");
    assertThatThrownBy(() -> pc.discard(new StreamCommand.RamDiscard("nope", List.of(new StreamCommand.Range(0, 0x1000))), 7))
        .hasMessageContaining("unknown RAM block 'nope'");
    assertThatThrownBy(() -> pc.discard(new StreamCommand.RamDiscard("huge", List.of(new StreamCommand.Range(0x1000, 0x1000))), 7))
        .hasMessageContaining("not aligned to its page size");
    // a page between the discards and LISTEN would undo a discard
    assertThatThrownBy(() -> feed("ram", 0, page(1)))
        .hasMessageContaining("between POSTCOPY_RAM_DISCARD and POSTCOPY_LISTEN");
    assertThatThrownBy(() -> pc.run(9)).hasMessageContaining("POSTCOPY_RUN in postcopy state DISCARD");
    assertThatThrownBy(() -> pc.advise(new StreamCommand.PostcopyAdvise(0x1000, 4096), 9))
        .hasMessageContaining("POSTCOPY_ADVISE in postcopy state");
  }

  @Test
  void mismatchedPageSizesAreRefusedAsQemuDoes() throws Exception {
    PostcopyIncoming other = new PostcopyIncoming(ram, () -> loader, t -> -1, 1);
    assertThatThrownBy(() -> other.advise(new StreamCommand.PostcopyAdvise(0x1000, 4096), 0))
        .hasMessageContaining("Postcopy needs matching RAM page sizes (s=1000 d=201000)");
  }

  @Test
  void aPackageLongerThanTheStreamIsAnError() {
    byte[] stream = {0x08, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00, 0x03, (byte) 0xe8, 0x08, 0x00, 0x04, 0x00, 0x00};
    StateLoader h = new StateLoader(new SaveStateRegistry(), null, (c, off) -> {});
    assertThatThrownBy(() -> new StreamReader(MigrationInput.of(stream), h).readSections())
        .isInstanceOf(MigrationStreamException.class)
        .hasMessageContaining("PACKAGED of 1000 bytes is longer than the rest of the stream: unexpected end of stream")
        .hasMessageContaining("offset ")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
  }

  @Test
  void theSourceRefusesARequestForAnUnknownBlockOrOutsideOne() {
    try (dev.ferry.savevm.LiveSave save = new RamLiveState(ram).openSave(dev.ferry.savevm.SaveOptions.NONE)) {
      dev.ferry.ram.RamPostcopySave src = (dev.ferry.ram.RamPostcopySave) save;
      assertThatThrownBy(() -> src.queuePageRequest("nope", 0, 4096)).hasMessageContaining("unknown RAM block 'nope'");
      assertThatThrownBy(() -> src.queuePageRequest("ram", 1 << 20, 4096)).hasMessageContaining("outside RAM block 'ram'");
      assertThatThrownBy(() -> src.queuePageRequest("ram", 100, 4096)).hasMessageContaining("not page aligned");
    }
  }

  @Test
  void anInterruptedWaiterGivesUpWithCancellation() throws Exception {
    listenAndRun();
    CompletableFuture<Long> w = guest(m -> m.getByte(0, 0x5000), true);
    awaitParked(w, 1, pc);
    vcpu.interrupt();
    LockSupport.unpark(vcpu);
    assertThatThrownBy(() -> w.get(20, TimeUnit.SECONDS)).hasCauseInstanceOf(java.util.concurrent.CancellationException.class);
  }
}
