package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.MachineHost;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * An in-process destination: {@link MachineHost#incoming(String, java.util.function.Consumer)
 * incoming} on a thread of its own, {@link #listen} returning once it listens (or failed before
 * that); what it threw is kept for {@link #failure} rather than thrown.
 */
public final class Incoming {
  private final CompletableFuture<Void> done;
  private final AtomicReference<String> bound;
  private final AtomicReference<Throwable> failure;

  private Incoming(CompletableFuture<Void> done, AtomicReference<String> bound, AtomicReference<Throwable> failure) {
    this.done = done;
    this.bound = bound;
    this.failure = failure;
  }

  /** Starts {@code destination}'s incoming migration on {@code uri}; returns once it listens. */
  public static Incoming listen(MachineHost destination, String uri) throws InterruptedException {
    return listen(destination, uri, ForkJoinPool.commonPool());
  }

  /** As {@link #listen(MachineHost, String)}, the incoming run by {@code executor}. */
  public static Incoming listen(MachineHost destination, String uri, Executor executor) throws InterruptedException {
    CountDownLatch listening = new CountDownLatch(1);
    AtomicReference<String> bound = new AtomicReference<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    CompletableFuture<Void> done =
        CompletableFuture.runAsync(
            () -> {
              try {
                destination.incoming(uri, b -> {
                  bound.set(b);
                  listening.countDown();
                });
              } catch (Throwable t) {
                failure.set(t);
                listening.countDown();
              }
            },
            executor);
    assertThat(listening.await(30, TimeUnit.SECONDS)).isTrue();
    return new Incoming(done, bound, failure);
  }

  /** The address it listens on (a tcp port 0 resolved). */
  public String uri() {
    return bound.get();
  }

  /** Whether the incoming migration ended (loaded or failed). */
  public boolean isDone() {
    return done.isDone();
  }

  /** Waits for the incoming migration to end; returns what it threw, null when it loaded. */
  public Throwable failure(long timeout, TimeUnit unit) throws Exception {
    done.get(timeout, unit);
    return failure.get();
  }

  /** Waits for the incoming migration to end; throws if it failed. */
  public void await(long timeout, TimeUnit unit) throws Exception {
    Throwable t = failure(timeout, unit);
    if (t != null) {
      throw new AssertionError("the incoming migration failed: " + t, t);
    }
  }
}
