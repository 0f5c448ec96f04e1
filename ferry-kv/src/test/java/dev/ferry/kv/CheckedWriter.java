package dev.ferry.kv;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A client whose every acknowledged write can be checked afterwards: it INCRs its counter {@code
 * ctr:ID}, then SETs {@code k:ID:N} to {@code vN} where N is the counter's new value. On the
 * source's READONLY after the switch-over it reconnects to the destination (once {@code
 * destinationOpen} is open, when given) and sends the refused command again there. Afterwards the
 * destination must hold {@code ctr:ID = acked} and every key up to it.
 */
final class CheckedWriter implements Runnable {
  final int id;
  final int srcPort;
  final int dstPort;
  final AtomicBoolean stop;
  final CountDownLatch destinationOpen;
  /** INCRs acknowledged, and as many SETs. */
  final AtomicLong acked = new AtomicLong();
  /** SETs the source acknowledged (when it first refused); -1 before. */
  volatile long setsOnSource = -1;
  volatile boolean onDestination;
  volatile Throwable failure;
  final CountDownLatch warmedUp = new CountDownLatch(1);
  private RespTestClient c;

  CheckedWriter(int id, int srcPort, int dstPort, AtomicBoolean stop, CountDownLatch destinationOpen) {
    this.id = id;
    this.srcPort = srcPort;
    this.dstPort = dstPort;
    this.stop = stop;
    this.destinationOpen = destinationOpen;
  }

  /** Sends a command; on the source's READONLY moves to the destination and sends it there. */
  private Object call(Object... args) throws IOException, InterruptedException {
    Object r = c.call(args);
    if (r instanceof RespTestClient.Err e && e.message().equals(KvCommands.MIGRATED)) {
      assertThat(onDestination).as("READONLY from the destination").isFalse();
      setsOnSource = acked.get();
      c.close();
      if (destinationOpen != null) {
        assertThat(destinationOpen.await(10, TimeUnit.MINUTES)).isTrue();
      }
      c = new RespTestClient(dstPort);
      onDestination = true;
      r = c.call(args);
    }
    return r;
  }

  @Override
  public void run() {
    try {
      c = new RespTestClient(srcPort);
      while (!stop.get()) {
        long n = acked.get() + 1;
        assertThat(call("INCR", "ctr:" + id)).as("client %d INCR", id).isEqualTo(n);
        assertThat(call("SET", "k:" + id + ":" + n, "v" + n)).as("client %d SET %d", id, n).isEqualTo("OK");
        acked.set(n);
        if (n == 200) {
          warmedUp.countDown();
        }
      }
    } catch (Throwable t) {
      failure = t;
      warmedUp.countDown();
    } finally {
      try {
        if (c != null) {
          c.close();
        }
      } catch (IOException e) {
        // done
      }
    }
  }

  /**
   * Waits, at most until {@code deadlineNanos} ({@link System#nanoTime}), until every writer moved to
   * the destination and had 50 more writes acknowledged there (or failed).
   */
  static void awaitWritingOnDestination(List<CheckedWriter> writers, long deadlineNanos) throws InterruptedException {
    for (CheckedWriter w : writers) {
      while ((!w.onDestination || w.acked.get() < w.setsOnSource + 50) && w.failure == null && System.nanoTime() < deadlineNanos) {
        Thread.sleep(10);
      }
    }
  }

  /** Checks on the destination: the counter equals the INCRs acknowledged, every key SET is there. */
  void verifyOn(RespTestClient dst) throws IOException {
    assertThat(failure).as("writer %d", id).isNull();
    assertThat(onDestination).as("writer %d moved to the destination", id).isTrue();
    assertThat(dst.callText("GET", "ctr:" + id)).as("counter of client %d", id).isEqualTo(Long.toString(acked.get()));
    for (long n = 1; n <= acked.get(); n++) {
      assertThat(dst.callText("GET", "k:" + id + ":" + n)).as("client %d key %d", id, n).isEqualTo("v" + n);
    }
  }
}
