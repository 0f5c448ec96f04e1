package dev.ferry.migration.multifd;

import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.MultifdPageWriter;
import dev.ferry.ram.MultifdQueue;
import dev.ferry.ram.RamBlock;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source's multifd channels (QEMU 7.2's {@code multifd_send_*}): N extra connections to the
 * destination, each with its own thread ({@code multifdsend_<id>}) that writes the 64-byte init
 * message and then packets of up to 128 pages of one RAM block ({@link MultifdPageWriter}, one
 * compression stream per channel for the whole migration).
 *
 * <p>The migration thread batches pages ({@link #queuePage}) and hands a full batch, or one cut short
 * by a block change or a sync, to the next channel that has room; a channel holds a few batches
 * waiting behind the one it writes, and writes all that wait (as fit) in one gathering write. Packet numbers are global, in hand-out order. {@link
 * #syncBeforeEos} gives every channel a SYNC packet and returns once all of them are written, so the
 * caller may write the section's EOS. Unlike 7.2 a SYNC is always a packet of its own (7.2 may set it
 * on a pending page packet); both are valid on the wire.
 *
 * <p>Failure of one channel (a write error, a closed or reset connection) is the first error and
 * sticks: every channel is shut, and the migration thread gets it from its next {@code queuePage} or
 * {@code syncBeforeEos}, so the migration fails and the source runs on. Waits poll that error and the
 * thread's interrupt (a cancel), so nothing waits forever.
 */
public final class MultifdSender implements MultifdQueue, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MultifdSender.class);
  /**
   * Batches a channel holds besides the one it works on: up to 5 small compressed packets per write
   * (one wake-up of the receiving thread for 5), while the pages in flight stay few and the bytes
   * counted per write (after it, as 7.2) stay small against the rate measurement's window.
   */
  private static final int QUEUE_DEPTH = 4;
  /** How often a blocked hand-out or sync looks at the channels' error. */
  private static final long POLL_MS = 50;

  private final int channelCount;
  private final MultifdCompression method;
  private final int level;
  private final byte[] uuid;
  private final List<Channel> channels = new ArrayList<>();
  private final AtomicReference<IOException> failure = new AtomicReference<>();
  private final AtomicLong multifdBytes = new AtomicLong();
  private final AtomicLong wireBytes = new AtomicLong();
  private long packetNum;
  private int next;
  private RamBlock batchBlock;
  private long[] batch = new long[MultifdPacket.PAGE_COUNT];
  private int batchCount;
  private volatile boolean closed;

  /**
   * @param channelCount {@code multifd-channels}
   * @param method {@code multifd-compression}
   * @param level the method's level ({@code multifd-zlib-level} / {@code multifd-zstd-level})
   * @param uuid the VM's UUID (16 bytes; zeros when it has none), sent in every init message
   */
  public MultifdSender(int channelCount, MultifdCompression method, int level, byte[] uuid) {
    if (channelCount < 1 || channelCount > 255) {
      throw new IllegalArgumentException("multifd channels: " + channelCount);
    }
    this.channelCount = channelCount;
    this.method = method;
    this.level = level;
    this.uuid = uuid.clone();
  }

  /**
   * Opens the channels, in id order, and starts their threads (each writes its init message first).
   * Called after the main connection is up, as 7.2 does: a 7.2 destination takes the first
   * connection for the main stream. {@code connector} opens one connection to the main stream's
   * address per call (the migration's own connector type: one idea, one interface).
   */
  public void connect(OutgoingMigration.Connector connector) throws IOException {
    for (int id = 0; id < channelCount; id++) {
      MigrationChannel c;
      try {
        c = connector.connect();
      } catch (IOException e) {
        throw new IOException("multifd channel " + id + ": cannot connect: " + e.getMessage(), e);
      }
      Channel ch = new Channel(id, c);
      channels.add(ch);
      if (closed) {
        throw new IOException("multifd channels closed while connecting");
      }
      ch.thread.start();
    }
  }

  /** What 7.2 counts as {@code multifd-bytes}: 1344 header bytes plus 4096 per page, per packet written. */
  public long multifdBytes() {
    return multifdBytes.get();
  }

  /** Bytes actually written on the channels (init messages and compressed payloads as they are). */
  public long wireBytes() {
    return wireBytes.get();
  }

  /** The first channel error, or null. */
  public IOException failure() {
    return failure.get();
  }

  @Override
  public void queuePage(RamBlock block, long offset) throws IOException {
    if (batchCount > 0 && (block != batchBlock || batchCount == MultifdPacket.PAGE_COUNT)) {
      dispatchBatch();
    }
    batchBlock = block;
    batch[batchCount++] = offset;
    if (batchCount == MultifdPacket.PAGE_COUNT) {
      dispatchBatch();
    }
  }

  @Override
  public void syncBeforeEos() throws IOException {
    if (batchCount > 0) {
      dispatchBatch();
    }
    for (Channel ch : channels) {
      put(ch, new Job(null, null, 0, true, packetNum++));
    }
    for (Channel ch : channels) {
      try {
        while (!ch.synced.tryAcquire(POLL_MS, TimeUnit.MILLISECONDS)) {
          check();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("multifd: interrupted while channel " + ch.id + " writes its SYNC");
      }
    }
    check();
  }

  private void dispatchBatch() throws IOException {
    Job job = new Job(batchBlock, batch, batchCount, false, packetNum++);
    batch = new long[MultifdPacket.PAGE_COUNT];
    batchCount = 0;
    // the first channel with room, starting after the last one used; else wait for the next in turn
    int n = channels.size();
    for (int i = 0; i < n; i++) {
      Channel ch = channels.get((next + i) % n);
      if (ch.jobs.offer(job)) {
        next = (next + i + 1) % n;
        return;
      }
    }
    Channel ch = channels.get(next);
    next = (next + 1) % n;
    put(ch, job);
  }

  private void put(Channel ch, Job job) throws IOException {
    check();
    try {
      while (!ch.jobs.offer(job, POLL_MS, TimeUnit.MILLISECONDS)) {
        check();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("multifd: interrupted while handing pages to channel " + ch.id);
    }
  }

  private void check() throws IOException {
    IOException e = failure.get();
    if (e != null) {
      throw new IOException(e.getMessage(), e);
    }
    if (closed) {
      throw new IOException("multifd channels are closed");
    }
  }

  private void fail(IOException e) {
    if (failure.compareAndSet(null, e)) {
      LOG.warn("{}", e.getMessage());
      for (Channel ch : channels) {
        ch.conn.shutdown();
      }
    }
  }

  /**
   * Stops the channel threads and closes the connections (after a completed migration everything
   * was written at the last sync: the destination sees each channel end between packets).
   */
  @Override
  public void close() {
    closed = true;
    ChannelThreads.stopAll(channels.stream().map(Channel::worker).toList(), LOG);
  }

  /** One packet for a channel: pages of one block, or a SYNC without pages. */
  private record Job(RamBlock block, long[] offsets, int count, boolean sync, long packetNum) {}

  private final class Channel {
    final int id;
    final MigrationChannel conn;
    /**
     * Batches waiting while the thread compresses or writes another; the thread takes all that are
     * waiting into its next write (few per write when raw, up to all of them when compressed).
     */
    final ArrayBlockingQueue<Job> jobs = new ArrayBlockingQueue<>(QUEUE_DEPTH);
    /** Released once per SYNC packet written. */
    final Semaphore synced = new Semaphore(0);
    final Thread thread;

    ChannelThreads.Worker worker() {
      return new ChannelThreads.Worker(id, conn, thread);
    }

    Channel(int id, MigrationChannel conn) {
      this.id = id;
      this.conn = conn;
      this.thread = Thread.ofPlatform().name("multifdsend_" + id).daemon().unstarted(this::run);
    }

    private void run() {
      try (MultifdPageWriter w = new MultifdPageWriter(method, level)) {
        w.writeInit(conn, uuid, id);
        wireBytes.addAndGet(w.wireBytes());
        long[] none = new long[0];
        while (!closed) {
          // the next job, and those already waiting behind it while they fit: one write for all
          Job j = jobs.take();
          long bytes = w.multifdBytes();
          long wire = w.wireBytes();
          int syncs = 0;
          do {
            w.stagePacket(j.sync(), j.packetNum(), j.block(), j.offsets() == null ? none : j.offsets(), j.count());
            syncs += j.sync() ? 1 : 0;
          } while (w.canStage() && (j = jobs.poll()) != null);
          w.flush(conn);
          multifdBytes.addAndGet(w.multifdBytes() - bytes);
          wireBytes.addAndGet(w.wireBytes() - wire);
          if (syncs > 0) {
            synced.release(syncs);
          }
        }
      } catch (InterruptedException e) {
        // closed
      } catch (IOException | RuntimeException e) {
        if (!closed) {
          fail(ChannelThreads.channelError(id, conn, e));
        }
      }
    }
  }
}
