package dev.ferry.migration;

import dev.ferry.ram.GuestRam;
import dev.ferry.ram.PageFaultHandler;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamLoader;
import dev.ferry.ram.ReceivedPages;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.StreamHeader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The postcopy destination (QEMU's postcopy-ram.c incoming side), as software demand paging: no
 * userfaultfd, because a Java thread blocked in a kernel page fault stops every HotSpot safepoint
 * (spec postcopy-block-convergence §2).
 *
 * <p>States {@code NONE -> ADVISE -> DISCARD -> LISTENING -> RUNNING -> END}, one method per
 * command. From LISTEN on it is the machine's {@link PageFaultHandler}: a guest access (read or
 * write) to a page not yet received parks that vCPU thread — a parked thread is safepoint-safe, so
 * GC, JIT and the monitor go on — after one request for the page's host page over the return path
 * (deduplicated: a second thread waiting for the same page sends nothing). The loader writes a
 * page, publishes its bit ({@link ReceivedPages}, release) and calls {@link #placed}, which wakes
 * the waiters. No lock is held while a thread waits.
 *
 * <p>Ferry's devices load from the buffered package without touching guest RAM, so the package is
 * processed on the loading thread before it reads on: the loading thread is the listen thread
 * after RUN (QEMU needs a second thread because its device loads may fault on RAM).
 */
public final class PostcopyIncoming implements PageFaultHandler {
  private static final Logger LOG = LoggerFactory.getLogger(PostcopyIncoming.class);
  private static final int TPS = StreamHeader.TARGET_PAGE_SIZE;

  /** QEMU's PostcopyState. */
  public enum State {
    NONE,
    ADVISE,
    DISCARD,
    LISTENING,
    RUNNING,
    END
  }

  private final GuestRam ram;
  private final List<RamBlock> blocks;
  private final Supplier<RamLoader> loader;
  private final ToIntFunction<Thread> vcpuIndex;
  private final int vcpuCount;
  private volatile State state = State.NONE;
  private volatile ReceivedPages received;
  private volatile ReturnPath.Writer returnPath;
  private volatile String pausedReason;

  /** Host pages waited for: key = block << 40 | host page's first target page. */
  private final ConcurrentHashMap<Long, Waiters> pending = new ConcurrentHashMap<>();
  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong resent = new AtomicLong();
  private final AtomicLong faults = new AtomicLong();
  /** Fault latency in ns: from the miss until the page was there. */
  private final Recorder latency = new Recorder(3);
  private final Histogram latencyTotal = new Histogram(3);
  // blocktime (QEMU's postcopy-blocktime): per vCPU, and all vCPUs blocked at once
  private final long[] vcpuBlockedNs;
  private int blockedVcpus;
  private long allBlockedSinceNs;
  private long totalBlockedNs;

  private static final class Waiters {
    final List<Thread> threads = new ArrayList<>(2);
    boolean requested;
  }

  /**
   * @param loader the RAM loader of the current load (it exists once the load began)
   * @param vcpuIndex the vCPU index of a thread, or -1 for other threads (monitor, checks)
   */
  public PostcopyIncoming(GuestRam ram, Supplier<RamLoader> loader, ToIntFunction<Thread> vcpuIndex, int vcpuCount) {
    this.ram = ram;
    this.blocks = ram.blocks();
    this.loader = loader;
    this.vcpuIndex = vcpuIndex;
    this.vcpuCount = vcpuCount;
    this.vcpuBlockedNs = new long[vcpuCount];
  }

  public State state() {
    return state;
  }

  // ---------------------------------------------------------------- commands

  /** POSTCOPY_ADVISE: page sizes must match; every page counts missing until this load writes it. */
  public void advise(StreamCommand.PostcopyAdvise a, long offset) throws IOException {
    expect(offset, "POSTCOPY_ADVISE", State.NONE);
    if (a.empty()) {
      throw new MigrationStreamException(
          "POSTCOPY_ADVISE without page sizes (dirty-bitmaps only), but postcopy-ram is on here", offset);
    }
    long summary = 0;
    for (RamBlock b : blocks) {
      summary |= b.pageSize();
    }
    if (a.hostPageSizes() != summary) {
      throw new MigrationStreamException(
          String.format("Postcopy needs matching RAM page sizes (s=%x d=%x)", a.hostPageSizes(), summary), offset);
    }
    if (a.targetPageSize() != TPS) {
      throw new MigrationStreamException(
          String.format("Postcopy needs matching target page sizes (s=%d d=%d)", a.targetPageSize(), TPS), offset);
    }
    // RAM is left in place (QEMU drops all of it here, because its userfaultfd needs absent pages).
    // Safe without the drop: Ferry's guest reaches RAM only through the fault handler installed at
    // LISTEN, which parks every access to a page the received map lacks until that page arrived and
    // was written whole; every page is in that map only after this load wrote it (finish() refuses a
    // stream that leaves one out); a zero record writes zeros unless the page already reads as zero;
    // and a DISCARD clears a page's bit so its old copy is never trusted. Dropping would undo a
    // preallocated destination (each page faulted in again on first write: 4 GiB took 15-18 s
    // instead of 11 s). Attacked by PostcopyMigrationTest's used and preallocated destinations.
    ReceivedPages r = new ReceivedPages(blocks);
    received = r;
    loader().advise(r);
    state = State.ADVISE;
  }

  /** POSTCOPY_RAM_DISCARD: drop the ranges and mark their pages missing. */
  public void discard(StreamCommand.RamDiscard d, long offset) throws IOException {
    expect(offset, "POSTCOPY_RAM_DISCARD", State.ADVISE, State.DISCARD);
    if (state == State.ADVISE) {
      loader().refusePages("a RAM page between POSTCOPY_RAM_DISCARD and POSTCOPY_LISTEN");
      state = State.DISCARD;
    }
    int bi = indexOf(d.blockName());
    if (bi < 0) {
      throw new MigrationStreamException("POSTCOPY_RAM_DISCARD names unknown RAM block '" + d.blockName() + "'", offset);
    }
    RamBlock b = blocks.get(bi);
    for (StreamCommand.Range r : d.ranges()) {
      long start = r.start();
      long len = r.length();
      if (start < 0 || len < 0 || start % b.pageSize() != 0 || len % b.pageSize() != 0) {
        throw new MigrationStreamException(
            String.format(
                "POSTCOPY_RAM_DISCARD range [0x%x, +0x%x) of block '%s' is not aligned to its page size 0x%x",
                start, len, b.name(), b.pageSize()),
            offset);
      }
      if (start > b.usedLength() || len > b.usedLength() - start) {
        throw new MigrationStreamException(
            String.format(
                "POSTCOPY_RAM_DISCARD range [0x%x, +0x%x) is past the end of block '%s' (length 0x%x)",
                start, len, b.name(), b.usedLength()),
            offset);
      }
      b.discard(start, len);
      received.clear(bi, start / TPS, len / TPS);
    }
  }

  /**
   * POSTCOPY_LISTEN: the loader switches to postcopy placement and this becomes the machine's page
   * fault handler (before RUN lets the vCPUs run).
   */
  public void listen(ReturnPath.Writer rp, long offset) throws IOException {
    expect(offset, "POSTCOPY_LISTEN", State.ADVISE, State.DISCARD);
    if (rp == null) {
      throw new MigrationStreamException("POSTCOPY_LISTEN without an open return path (pages could not be requested)", offset);
    }
    returnPath = rp;
    loader().enterPostcopy(this::placed);
    ram.setPageFaultHandler(this);
    state = State.LISTENING;
  }

  /** POSTCOPY_RUN: the caller starts the machine now. */
  public void run(long offset) throws IOException {
    expect(offset, "POSTCOPY_RUN", State.LISTENING);
    state = State.RUNNING;
  }

  /** The stream ended (EOF): every page must be in; the hook is removed. */
  public void finish() throws IOException {
    ReceivedPages r = received;
    if (r != null && state == State.RUNNING) {
      for (int i = 0; i < blocks.size(); i++) {
        long missing = r.missingPages(i);
        if (missing > 0) {
          throw new MigrationStreamException(
              "postcopy stream ended with " + missing + " pages of RAM block '" + blocks.get(i).name() + "' never sent");
        }
      }
    }
    if (state == State.LISTENING || state == State.RUNNING) {
      ram.setPageFaultHandler(null);
    }
    state = State.END;
  }

  /** The load failed before RUN (the machine never ran): the hook goes, the machine is discarded. */
  public void finishAfterFailure() {
    if (state == State.LISTENING) {
      ram.setPageFaultHandler(null);
    }
  }

  /**
   * The stream failed after RUN: the guest keeps its received pages, waiting vCPUs stay parked
   * (until recovery brings their pages), requests are no longer sent.
   */
  public void pause(String reason) {
    pausedReason = reason;
  }

  /**
   * Postcopy recovery begins on a new connection: page requests and bitmaps go to {@code rp}, and
   * the loader drops what it half collected from the lost connection. Requests stay held until
   * {@link #resume}.
   */
  public void recover(ReturnPath.Writer rp) throws IOException {
    if (state != State.RUNNING) {
      throw new MigrationStreamException("postcopy recovery in postcopy state " + state + " (allowed in RUNNING)");
    }
    returnPath = java.util.Objects.requireNonNull(rp, "rp");
    loader().resumePostcopy();
  }

  /**
   * RECV_BITMAP (recovery): answers with block {@code blockName}'s received bitmap in QEMU's
   * encoding on the new return path.
   */
  public void sendReceivedBitmap(String blockName, long offset) throws IOException {
    int bi = indexOf(blockName);
    if (bi < 0) {
      throw new MigrationStreamException("RECV_BITMAP names unknown RAM block '" + blockName + "'", offset);
    }
    ReceivedPages r = received;
    if (r == null || state != State.RUNNING) {
      throw new MigrationStreamException("RECV_BITMAP in postcopy state " + state + " (allowed in RUNNING)", offset);
    }
    returnPath.receivedBitmap(blockName, r.toLittleEndianBytes(bi));
  }

  /**
   * POSTCOPY_RESUME (recovery): the next request names its block again, RESUME_ACK(1) goes out, and
   * every page a vCPU still waits for is requested again (the source dropped its queue).
   *
   * @return how many requests were sent again
   */
  public int resume() throws IOException {
    ReturnPath.Writer rp = returnPath;
    rp.forgetLastBlock();
    pausedReason = null;
    rp.resumeAck(1);
    ReceivedPages r = received;
    int again = 0;
    for (Long key : pending.keySet()) {
      int bi = (int) (key >>> 40);
      long page = key & ((1L << 40) - 1);
      if (!r.isReceived(bi, page)) {
        RamBlock b = blocks.get(bi);
        requests.incrementAndGet();
        resent.incrementAndGet();
        rp.requestPages(b.name(), page * TPS, b.pageSize());
        again++;
      }
    }
    return again;
  }

  private RamLoader loader() throws MigrationStreamException {
    RamLoader l = loader.get();
    if (l == null) {
      throw new MigrationStreamException("postcopy command before the RAM loader was set up");
    }
    return l;
  }

  private void expect(long offset, String what, State... allowed) throws MigrationStreamException {
    State s = state;
    for (State a : allowed) {
      if (s == a) {
        return;
      }
    }
    throw new MigrationStreamException(what + " in postcopy state " + s + " (allowed in " + List.of(allowed) + ")", offset);
  }

  private int indexOf(String name) {
    for (int i = 0; i < blocks.size(); i++) {
      if (blocks.get(i).name().equals(name)) {
        return i;
      }
    }
    return -1;
  }

  // ---------------------------------------------------------------- faults

  @Override
  public void ensurePresent(int blockIndex, long offset, long length) {
    ReceivedPages r = received;
    if (r == null || r.complete(blockIndex)) {
      return;
    }
    RamBlock b = blocks.get(blockIndex);
    long ps = b.pageSize();
    long end = offset + length;
    for (long host = offset & -ps; host < end; host += ps) {
      if (!r.isReceived(blockIndex, host / TPS)) {
        await(r, blockIndex, b, host);
      }
    }
  }

  private void await(ReceivedPages r, int bi, RamBlock b, long host) {
    long page = host / TPS;
    long key = ((long) bi << 40) | page;
    Thread me = Thread.currentThread();
    long t0 = System.nanoTime();
    boolean[] send = new boolean[1];
    pending.compute(
        key,
        (k, w) -> {
          if (w == null) {
            w = new Waiters();
          }
          w.threads.add(me);
          if (!w.requested) {
            w.requested = true;
            send[0] = true;
          }
          return w;
        });
    int vcpu = vcpuIndex.applyAsInt(me);
    try {
      if (r.isReceived(bi, page)) {
        return; // placed between the test and the registration
      }
      faults.incrementAndGet();
      if (send[0]) {
        request(b, host);
      }
      blocked(vcpu, true);
      try {
        while (!r.isReceived(bi, page)) {
          LockSupport.park(this);
          if (me.isInterrupted()) {
            throw new CancellationException(
                "interrupted while waiting for postcopy page 0x" + Long.toHexString(host) + " of RAM block '" + b.name() + "'");
          }
        }
      } finally {
        blocked(vcpu, false);
      }
      latency.recordValue(System.nanoTime() - t0);
    } finally {
      pending.computeIfPresent(
          key,
          (k, w) -> {
            w.threads.remove(me);
            return w.threads.isEmpty() ? null : w;
          });
    }
  }

  private void request(RamBlock b, long host) {
    if (pausedReason != null) {
      return;
    }
    ReturnPath.Writer rp = returnPath;
    try {
      requests.incrementAndGet();
      rp.requestPages(b.name(), host, b.pageSize());
    } catch (IOException | RuntimeException e) {
      // the stream's reader sees the broken connection too and pauses the migration; the
      // waiting vCPU stays parked, as QEMU's does in postcopy-paused
      LOG.debug("page request for {} 0x{} failed", b.name(), Long.toHexString(host), e);
    }
  }

  /** Called by the loader after host page {@code host} of block {@code bi} was published. */
  void placed(int bi, long host, int length) {
    // after the bit: a waiter registered before this removal is unparked, one registering later
    // sees the bit (CHM orders operations on one key)
    Waiters w = pending.remove(((long) bi << 40) | (host / TPS));
    if (w != null) {
      for (Thread t : w.threads) {
        LockSupport.unpark(t);
      }
    }
  }

  private synchronized void blocked(int vcpu, boolean now) {
    if (vcpu < 0 || vcpu >= vcpuCount) {
      return; // QEMU counts vCPU threads only
    }
    long t = System.nanoTime();
    if (now) {
      vcpuBlockedNs[vcpu] -= t;
      if (++blockedVcpus == vcpuCount) {
        allBlockedSinceNs = t;
      }
    } else {
      vcpuBlockedNs[vcpu] += t;
      if (blockedVcpus-- == vcpuCount) {
        totalBlockedNs += t - allBlockedSinceNs;
      }
    }
  }

  // ---------------------------------------------------------------- statistics

  /** Page requests sent over the return path. */
  public long requestsSent() {
    return requests.get();
  }

  /** Guest accesses that found their page missing and waited. */
  public long faults() {
    return faults.get();
  }

  /** Fault latency so far (ns): count, p50, p99, max. */
  public synchronized Histogram faultLatencyNs() {
    latencyTotal.add(latency.getIntervalHistogram());
    return latencyTotal.copy();
  }

  /** Blocktime per vCPU in ms (QEMU's postcopy-vcpu-blocktime); a vCPU blocked now counts until now. */
  public synchronized long[] vcpuBlocktimeMs() {
    long now = System.nanoTime();
    long[] out = new long[vcpuCount];
    for (int i = 0; i < vcpuCount; i++) {
      long v = vcpuBlockedNs[i];
      out[i] = (v < 0 ? v + now : v) / 1_000_000;
    }
    return out;
  }

  /** Time all vCPUs were blocked at once, in ms (QEMU's postcopy-blocktime). */
  public synchronized long blocktimeMs() {
    long t = totalBlockedNs;
    if (vcpuCount > 0 && blockedVcpus == vcpuCount) {
      t += System.nanoTime() - allBlockedSinceNs;
    }
    return t / 1_000_000;
  }

  /** Host pages that threads wait for now (parked vCPUs, while paused too). */
  public int waitedPages() {
    return pending.size();
  }

  /** Page requests sent again by recoveries (POSTCOPY_RESUME). */
  public long requestsResent() {
    return resent.get();
  }

  /** Pages still missing, or 0 before ADVISE. */
  public long missingPages() {
    ReceivedPages r = received;
    return r == null ? 0 : r.missingPages();
  }
}
