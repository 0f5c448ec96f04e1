package dev.ferry.migration.multifd;

import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.util.List;
import org.slf4j.Logger;

/** The ending both multifd sides share: one thread per channel connection, stopped and joined. */
final class ChannelThreads {
  private static final long JOIN_NS = 5_000_000_000L;

  /** One channel's connection, the thread that works on it, and its id (for the log). */
  record Worker(int id, MigrationChannel conn, Thread thread) {}

  private ChannelThreads() {}

  /** The one-line failure of channel {@code id}: its number, its peer and what went wrong. */
  static IOException channelError(int id, MigrationChannel conn, Exception e) {
    String why = e.getMessage() == null ? e.toString() : e.getMessage();
    return new IOException("multifd channel " + id + " (" + conn.peerDescription() + "): " + why, e);
  }

  /**
   * Shuts every connection (a thread blocked in I/O returns), interrupts every thread (one waiting
   * for work returns), then waits for each thread up to 5 s and closes its connection. A cancel
   * interrupts the calling thread: the wait happens all the same (the threads use guest RAM, which
   * must not be released under them), and the interrupt is kept for later.
   */
  static void stopAll(List<Worker> workers, Logger log) {
    for (Worker w : workers) {
      w.conn().shutdown();
      w.thread().interrupt();
    }
    boolean interrupted = Thread.interrupted();
    for (Worker w : workers) {
      long deadline = System.nanoTime() + JOIN_NS;
      while (w.thread().isAlive() && System.nanoTime() < deadline) {
        try {
          w.thread().join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      try {
        w.conn().close();
      } catch (IOException e) {
        log.debug("closing multifd channel {} failed", w.id(), e);
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
