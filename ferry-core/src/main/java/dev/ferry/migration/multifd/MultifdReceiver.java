package dev.ferry.migration.multifd;

import dev.ferry.ram.MultifdPageReader;
import dev.ferry.ram.MultifdSync;
import dev.ferry.ram.RamBlock;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.ram.RamLoader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.TransportListener;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination's multifd channels (QEMU 7.2's {@code multifd_recv_*}): after the main connection,
 * the listener accepts exactly {@code multifd-channels} more; each one's init message is checked
 * (magic, version, the VM's UUID, an id in range and not taken; QEMU's texts) before the main stream
 * is read. Then one thread per channel ({@code multifdrecv_<id>}) reads packets, checks them
 * ({@link MultifdPacket#read}, {@link MultifdPageReader}) and places the pages straight into guest
 * RAM; at a SYNC packet it parks until the main stream reaches its RAM EOS ({@link #syncAtEos}).
 *
 * <p>Where 7.2's destination hangs (a channel that never comes, a bad init, a bad packet, a channel
 * that ends or breaks before its SYNC), this one fails in one line naming the channel: every wait has
 * a deadline, and a channel error shuts the main connection too, so the loading thread stops reading
 * and reports the channel's error ({@link #failure}) rather than the connection it lost.
 */
public final class MultifdReceiver implements MultifdSync, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MultifdReceiver.class);
  /** How long the channels may take to connect and send their init messages (ms). */
  static final long ACCEPT_TIMEOUT_MS = Long.getLong("ferry.multifdAcceptTimeoutMs", 10_000);
  /**
   * How long the main stream's EOS waits for a channel's SYNC (ms): the source wrote the SYNC before
   * the EOS, so only data still in flight is missing; a channel that stays silent this long is dead.
   */
  static final long SYNC_TIMEOUT_MS = Long.getLong("ferry.multifdSyncTimeoutMs", 60_000);
  private static final long POLL_MS = 50;

  private final MultifdCompression method;
  private final List<Channel> channels;
  private final AtomicReference<IOException> failure = new AtomicReference<>();
  private final Runnable onFailure;
  private volatile RamBlockResolver blocks;
  private volatile boolean closed;

  private MultifdReceiver(MultifdCompression method, List<Channel> channels, Runnable onFailure) {
    this.method = method;
    this.channels = channels;
    this.onFailure = onFailure;
  }

  /**
   * Accepts {@code count} channels on {@code listener} (after the main connection), reads and checks
   * their init messages; {@link #start} starts their threads. {@code admit} passes each raw connection through
   * the same gate as the main one. On any failure every accepted channel is closed.
   *
   * @param uuid this VM's UUID (16 bytes, zeros when it has none): every channel must carry it
   * @param onFailure run once when a channel fails later (shuts the main connection)
   * @throws IOException one line naming the channel and what is wrong, or the channels that did not
   *     come in time
   */
  public static MultifdReceiver accept(
      TransportListener listener, Admit admit, int count, MultifdCompression method, byte[] uuid, Runnable onFailure)
      throws IOException {
    List<MigrationChannel> raw = new ArrayList<>();
    List<Channel> chans = new ArrayList<>();
    boolean ok = false;
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ACCEPT_TIMEOUT_MS);
    // a watchdog bounds the blocking accepts and init reads: it closes the listener and shuts the
    // connections accepted so far, which makes a blocked accept or read throw
    Thread watchdog = Thread.ofPlatform().name("multifd-accept-deadline").daemon().start(() -> {
      try {
        Thread.sleep(ACCEPT_TIMEOUT_MS);
      } catch (InterruptedException e) {
        return;
      }
      try {
        listener.close();
      } catch (IOException e) {
        LOG.debug("closing the listener", e);
      }
      synchronized (raw) {
        raw.forEach(MigrationChannel::shutdown);
      }
    });
    try {
      MigrationChannel[] byId = new MigrationChannel[count];
      MultifdPageReader.ExactInput[] inputs = new MultifdPageReader.ExactInput[count];
      for (int accepted = 0; accepted < count; accepted++) {
        MigrationChannel c;
        try {
          c = admit.admit(listener.accept());
        } catch (IOException e) {
          if (System.nanoTime() - deadline >= 0) {
            throw new IOException("multifd: " + accepted + " of " + count + " channels connected within "
                + ACCEPT_TIMEOUT_MS / 1000 + " s (both sides need the same multifd-channels)", e);
          }
          throw new IOException("multifd: accepting channel " + accepted + " of " + count + ": " + e.getMessage(), e);
        }
        synchronized (raw) {
          raw.add(c);
        }
        String prefix = "failed to receive packet via multifd channel " + accepted + " (" + c.peerDescription() + "): ";
        MultifdInit init;
        MultifdPageReader.ExactInput in = new MultifdPageReader.ExactInput(c, 0);
        try {
          // exactly the 64 bytes: the packets after it are read by the channel's thread, straight into RAM
          ByteBuffer initBytes = ByteBuffer.allocate(MultifdInit.LENGTH);
          in.readFully(initBytes);
          init = MultifdInit.read(MigrationInput.of(initBytes.array()));
        } catch (IOException e) {
          String why = e.getMessage();
          if (System.nanoTime() - deadline >= 0) {
            why = "no init message within " + ACCEPT_TIMEOUT_MS / 1000 + " s";
          }
          throw new IOException(prefix + why, e);
        }
        if (!init.sameUuid(uuid)) {
          throw new IOException(prefix + String.format("multifd: received uuid '%s' and expected uuid '%s' for channel %d",
              init.uuidText(), MultifdInit.uuidText(uuid), init.id()));
        }
        // 7.2 lets id == channels through (an off-by-one); Ferry takes 0 … channels-1 only
        if (init.id() >= count) {
          throw new IOException(prefix + String.format(
              "multifd: received channel id %d, but multifd-channels is %d (ids 0 to %d)", init.id(), count, count - 1));
        }
        if (byId[init.id()] != null) {
          throw new IOException(prefix + String.format("multifd: received id '%d' already setup'", init.id()));
        }
        byId[init.id()] = c;
        inputs[init.id()] = in;
      }
      watchdog.interrupt();
      // no more connections: a source with more channels than this side finds its extra ones refused
      // at once (7.2 ignores them with "Extra incoming migration connection") instead of stalling
      // at a SYNC nobody reads
      listener.close();
      MultifdReceiver r = new MultifdReceiver(method, chans, onFailure);
      for (int id = 0; id < count; id++) {
        chans.add(r.new Channel(id, byId[id], inputs[id]));
      }
      ok = true;
      return r;
    } finally {
      watchdog.interrupt();
      if (!ok) {
        synchronized (raw) {
          for (MigrationChannel c : raw) {
            c.shutdown();
            try {
              c.close();
            } catch (IOException e) {
              LOG.debug("closing a refused multifd channel", e);
            }
          }
        }
      }
    }
  }

  /**
   * Starts the channel threads: after the main connection passed its gate, so that a channel's
   * early failure (which shuts the main connection) is reported by the load as the channel's.
   */
  public void start() {
    for (Channel ch : channels) {
      ch.thread.start();
    }
  }

  /** The gate every accepted connection passes (e.g. the TLS-ClientHello check of a plain destination). */
  @FunctionalInterface
  public interface Admit {
    MigrationChannel admit(MigrationChannel raw) throws IOException;
  }

  /** The first channel error, or null. */
  public IOException failure() {
    return failure.get();
  }

  @Override
  public void syncAtEos(RamLoader loader) throws IOException {
    blocks = loader.resolver();
    for (Channel ch : channels) {
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SYNC_TIMEOUT_MS);
      try {
        while (!ch.arrived.tryAcquire(POLL_MS, TimeUnit.MILLISECONDS)) {
          check();
          if (ch.ended) {
            throw fail(ChannelThreads.channelError(ch.id, ch.conn,
                new IOException("the channel ended before the SYNC of the main stream's RAM EOS")));
          }
          if (System.nanoTime() - deadline >= 0) {
            throw fail(ChannelThreads.channelError(ch.id, ch.conn,
                new IOException("no SYNC within " + SYNC_TIMEOUT_MS / 1000 + " s of the main stream's RAM EOS")));
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("multifd: interrupted while waiting for channel " + ch.id + "'s SYNC");
      }
    }
    check();
    // every channel is parked at its SYNC: take their page lists, let them read on at once, and do
    // the bookkeeping meanwhile (before this returns, so before the main stream goes on)
    List<List<Placed>> lists = new ArrayList<>(channels.size());
    for (Channel ch : channels) {
      lists.add(ch.placed);
      ch.placed = new ArrayList<>();
    }
    for (Channel ch : channels) {
      ch.release.release();
    }
    for (List<Placed> list : lists) {
      for (Placed p : list) {
        loader.multifdPagesPlaced(p.block(), p.offsets());
      }
    }
  }

  private void check() throws IOException {
    IOException e = failure.get();
    if (e != null) {
      throw new IOException(e.getMessage(), e);
    }
  }

  private IOException fail(IOException e) {
    if (failure.compareAndSet(null, e)) {
      LOG.warn("{}", e.getMessage());
      for (Channel ch : channels) {
        ch.conn.shutdown();
      }
      try {
        onFailure.run();
      } catch (RuntimeException x) {
        LOG.warn("multifd: stopping the main stream failed: {}", x.toString());
      }
    }
    return e;
  }

  /** Stops the channel threads and closes the connections. */
  @Override
  public void close() {
    closed = true;
    ChannelThreads.stopAll(channels.stream().map(Channel::worker).toList(), LOG);
  }

  /** Pages of one packet, reported to the loader at the next sync. */
  private record Placed(RamBlock block, long[] offsets) {}

  private final class Channel {
    final int id;
    final MigrationChannel conn;
    final MultifdPageReader.ExactInput in;
    final MultifdPageReader reader;
    final Thread thread;

    ChannelThreads.Worker worker() {
      return new ChannelThreads.Worker(id, conn, thread);
    }
    /** Released when the channel read a SYNC packet. */
    final Semaphore arrived = new Semaphore(0);
    /** Released by the main thread's sync: the channel reads on. */
    final Semaphore release = new Semaphore(0);
    /**
     * Written by the channel thread; swapped for a new list by the main thread only while the channel
     * is parked at its SYNC (the release semaphore orders both).
     */
    List<Placed> placed = new ArrayList<>();
    volatile boolean ended;

    Channel(int id, MigrationChannel conn, MultifdPageReader.ExactInput in) {
      this.id = id;
      this.conn = conn;
      this.in = in;
      this.reader = new MultifdPageReader(id, method);
      this.thread = Thread.ofPlatform().name("multifdrecv_" + id).daemon().unstarted(this::run);
    }

    private void run() {
      MultifdPacket p = new MultifdPacket();
      try (reader) {
        while (in.readHeader(p)) {
          if (p.normalPages() > 0) {
            RamBlockResolver b = blocks;
            if (b == null) {
              throw new MigrationStreamException("multifd " + id + ": a packet with pages before the first SYNC",
                  p.streamOffset());
            }
            reader.readPages(p, in, b);
            long[] offs = new long[p.normalPages()];
            for (int i = 0; i < offs.length; i++) {
              offs[i] = p.offset(i);
            }
            placed.add(new Placed(b.resolve(p.block()), offs));
          }
          if (p.sync()) {
            arrived.release();
            release.acquire();
          }
        }
        ended = true;
      } catch (InterruptedException e) {
        ended = true;
      } catch (IOException | RuntimeException e) {
        ended = true;
        if (!closed) {
          fail(ChannelThreads.channelError(id, conn, e));
        }
      }
    }
  }
}
