package dev.ferry.kv;

import dev.ferry.kv.resp.RespReader;
import dev.ferry.kv.resp.RespRequest;
import dev.ferry.kv.resp.RespWriter;
import dev.ferry.kv.store.KvTable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Redis-protocol server. Each connection has a virtual thread that reads requests, answers the
 * ones that do not touch the keyspace itself, and hands the others, in order and one batch per
 * read (pipelined requests travel together), to the worker threads. A worker runs a batch of jobs
 * inside one guest step under the table lock, so a pause or a migration's switch-over never sees a
 * command half done; a command is acknowledged (its reply written) only after its step ended, so
 * every acknowledged write is in the state a switch-over captures.
 *
 * <p>While the machine is stopped, jobs wait. When the keyspace moved away (a migration source
 * after its switch-over), keyspace commands are answered {@code -READONLY ...} without running —
 * clients reconnect to the destination — and INFO is answered from the frozen state.
 */
public final class KvServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(KvServer.class);
  /** How often a waiting worker looks at whether the keyspace moved away. */
  private static final Duration STEP_WAIT = Duration.ofMillis(50);
  /** Active expiry: buckets swept per idle tick. */
  private static final int EXPIRE_BUCKETS_PER_TICK = 256;

  private final KvGuest guest;
  private final ServerSocketChannel listener;
  private final int port;
  private final long startedAtMs = System.currentTimeMillis();
  private final BlockingQueue<Job> jobs = new LinkedBlockingQueue<>();
  private final ReentrantLock tableLock = new ReentrantLock();
  private final List<Thread> workers = new ArrayList<>();
  private final Set<SocketChannel> connections = ConcurrentHashMap.newKeySet();
  private final AtomicLong clientIds = new AtomicLong();
  private final Thread acceptor;
  private volatile boolean closed;
  /** Times a worker with a batch found the machine stopped (observable by tests). */
  private final AtomicLong stepWaits = new AtomicLong();

  private KvServer(KvGuest guest, ServerSocketChannel listener, int workerCount) throws IOException {
    this.guest = guest;
    this.listener = listener;
    this.port = ((InetSocketAddress) listener.getLocalAddress()).getPort();
    for (int i = 0; i < workerCount; i++) {
      boolean sweeper = i == 0;
      workers.add(Thread.ofPlatform().name("kv-worker-" + i).daemon(true).start(() -> runWorker(sweeper)));
    }
    this.acceptor = Thread.ofPlatform().name("kv-accept-" + port).daemon(true).start(this::accept);
  }

  /**
   * Listens on {@code bind} (port 0: any free one) and serves the keyspace of {@code guest} with
   * {@code workerCount} worker threads.
   */
  public static KvServer start(KvGuest guest, InetSocketAddress bind, int workerCount) throws IOException {
    if (workerCount < 1 || workerCount > 64) {
      throw new IllegalArgumentException("workers must be 1..64: " + workerCount);
    }
    ServerSocketChannel ch = ServerSocketChannel.open();
    try {
      ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      ch.bind(bind, 512);
      return new KvServer(guest, ch, workerCount);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  public int port() {
    return port;
  }

  /** How many times a worker holding commands found the machine stopped and waited. */
  long stepWaits() {
    return stepWaits.get();
  }

  public int connectedClients() {
    return connections.size();
  }

  // ---------------------------------------------------------------- connections

  private void accept() {
    while (!closed) {
      SocketChannel ch;
      try {
        ch = listener.accept();
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          LOG.warn("kv server on port {}: accept failed: {}", port, e.toString());
        }
        continue;
      }
      connections.add(ch);
      long id = clientIds.incrementAndGet();
      Thread.ofVirtual().name("kv-client-" + id).start(() -> serve(ch, id));
    }
  }

  private void serve(SocketChannel ch, long clientId) {
    RespReader reader = new RespReader();
    RespWriter writer = new RespWriter();
    ByteBuffer in = ByteBuffer.allocate(64 * 1024);
    try (ch) {
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      boolean quit = false;
      while (!quit && !closed) {
        in.clear();
        if (ch.read(in) < 0) {
          return;
        }
        in.flip();
        reader.feed(in);
        Job job = null;
        for (RespRequest r = reader.next(); r != null && !quit; r = reader.next()) {
          switch (r) {
            case RespRequest.ProtocolError e -> {
              job = flush(job);
              writer.error("ERR " + e.message());
            }
            case RespRequest.Command c -> {
              KvCommand cmd = KvCommand.byName(c.name());
              if (cmd == null) {
                job = flush(job);
                writer.error(KvCommands.unknownCommand(c.args()));
              } else if (!cmd.arityAllows(c.args().size())) {
                job = flush(job);
                writer.error(KvCommands.wrongArity(cmd));
              } else if (cmd.access() == KvCommand.Access.NONE) {
                job = flush(job);
                quit = KvCommands.runLocal(cmd, c.args(), view(), clientId, writer);
              } else {
                if (job == null) {
                  job = new Job(writer);
                }
                job.add(cmd, c.args());
              }
            }
          }
        }
        flush(job);
        writer.writeTo(ch);
      }
    } catch (IOException e) {
      LOG.debug("kv client {} gone: {}", clientId, e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      LOG.warn("kv client {}: {}", clientId, e.toString(), e);
    } finally {
      connections.remove(ch);
    }
  }

  /** Runs {@code job} (if any) through the workers and waits for it; returns null. */
  private Job flush(Job job) throws InterruptedException, IOException {
    if (job != null) {
      jobs.add(job);
      if (!job.await(this)) {
        throw new ClosedChannelException();
      }
    }
    return null;
  }

  private KvCommands.ServerView view() {
    return new KvCommands.ServerView(port, guest.regionBytes(), startedAtMs, connections.size(), guest.runState());
  }

  // ---------------------------------------------------------------- workers

  /** Keyspace commands of one connection, run in order by one worker; its replies go to the connection's writer. */
  private static final class Job {
    final RespWriter out;
    final List<KvCommand> commands = new ArrayList<>();
    final List<List<byte[]>> args = new ArrayList<>();
    final Thread waiter = Thread.currentThread();
    volatile boolean done;

    Job(RespWriter out) {
      this.out = out;
    }

    void add(KvCommand c, List<byte[]> a) {
      commands.add(c);
      args.add(a);
    }

    /** Waits until a worker ran the job; false when the server closed first (no reply then). */
    boolean await(KvServer server) throws InterruptedException {
      while (!done) {
        LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(100));
        if (Thread.interrupted()) {
          throw new InterruptedException();
        }
        if (server.closed && !done) {
          return false; // the workers are gone or going: the connection closes
        }
      }
      return true;
    }

    void finish() {
      done = true;
      LockSupport.unpark(waiter);
    }
  }

  private void runWorker(boolean sweeper) {
    try (KvGuest.Worker w = guest.openWorker()) {
      List<Job> batch = new ArrayList<>();
      while (!closed) {
        Job first = jobs.poll(100, TimeUnit.MILLISECONDS);
        if (first == null) {
          if (sweeper) {
            sweep(w);
          }
          continue;
        }
        batch.add(first);
        jobs.drainTo(batch, 63);
        try {
          runBatch(w, batch);
        } finally {
          batch.forEach(Job::finish);
          batch.clear();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      if (!closed) {
        LOG.error("kv worker failed", e);
      }
    }
  }

  private void runBatch(KvGuest.Worker w, List<Job> batch) throws InterruptedException {
    while (true) {
      if (w.tryEnterStep(STEP_WAIT)) {
        try {
          tableLock.lock();
          try {
            KvTable table = new KvTable(w.memory(), guest.state(), true);
            if (!guest.state().formatted()) {
              table.format();
            }
            long nowMs = System.currentTimeMillis();
            KvCommands.ServerView view = view();
            for (Job j : batch) {
              for (int i = 0; i < j.commands.size(); i++) {
                guest.state().commandsProcessed++;
                try {
                  KvCommands.runKeyspace(j.commands.get(i), j.args.get(i), table, guest.state(), nowMs, view, j.out);
                } catch (RuntimeException e) {
                  // a bug or a corrupt heap: this command fails, the server and the connection go on
                  LOG.error("kv command {} failed", j.commands.get(i).lowerName(), e);
                  j.out.error("ERR ferry-kv internal error in '" + j.commands.get(i).lowerName() + "': " + e.getMessage());
                }
              }
            }
          } finally {
            tableLock.unlock();
          }
        } finally {
          w.exitStep();
        }
        return;
      }
      stepWaits.incrementAndGet();
      if (guest.migratedAway()) {
        KvTable frozen = new KvTable(w.memory(), guest.state(), false);
        KvCommands.ServerView view = view();
        for (Job j : batch) {
          for (int i = 0; i < j.commands.size(); i++) {
            KvCommand c = j.commands.get(i);
            if (c.access() == KvCommand.Access.INFO && guest.state().formatted()) {
              KvCommands.runKeyspace(c, j.args.get(i), frozen, guest.state(), System.currentTimeMillis(), view, j.out);
            } else {
              j.out.error(KvCommands.MIGRATED);
            }
          }
        }
        return;
      }
      if (closed) {
        for (Job j : batch) {
          for (int i = 0; i < j.commands.size(); i++) {
            j.out.error("ERR ferry-kv is shutting down");
          }
        }
        return;
      }
    }
  }

  /** Active expiry while idle: a short step that sweeps some buckets. */
  private void sweep(KvGuest.Worker w) throws InterruptedException {
    if (guest.state().expiresCount == 0 || !w.tryEnterStep(Duration.ZERO)) {
      return;
    }
    try {
      tableLock.lock();
      try {
        if (guest.state().formatted()) {
          new KvTable(w.memory(), guest.state(), true).expireSome(System.currentTimeMillis(), EXPIRE_BUCKETS_PER_TICK);
        }
      } finally {
        tableLock.unlock();
      }
    } finally {
      w.exitStep();
    }
  }

  /** Stops accepting, closes every connection and ends the workers. */
  @Override
  public void close() throws IOException {
    closed = true;
    listener.close();
    for (SocketChannel c : connections) {
      try {
        c.close();
      } catch (IOException e) {
        // closing anyway
      }
    }
    try {
      acceptor.join(TimeUnit.SECONDS.toMillis(5));
      for (Thread t : workers) {
        t.join(TimeUnit.SECONDS.toMillis(5));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
