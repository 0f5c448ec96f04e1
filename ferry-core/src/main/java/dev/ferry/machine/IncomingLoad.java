package dev.ferry.machine;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One incoming migration of an in-process destination: {@link MachineHost#incoming(String,
 * java.util.function.Consumer)} run by an executor, {@link #start} returning once it listens (or
 * failed before that). What the load threw is kept for {@link #failure} rather than thrown, so a
 * driver (the benchmarks, the tests) can report the source's and the destination's side together.
 */
public final class IncomingLoad {
  /** How long {@link #start} waits for the destination to listen. */
  private static final long LISTEN_TIMEOUT_S = 60;

  private final String listen;
  private final CompletableFuture<Void> done;
  private final AtomicReference<String> bound;
  private final AtomicReference<Throwable> failure;

  private IncomingLoad(
      String listen, CompletableFuture<Void> done, AtomicReference<String> bound, AtomicReference<Throwable> failure) {
    this.listen = listen;
    this.done = done;
    this.bound = bound;
    this.failure = failure;
  }

  /**
   * Starts {@code destination}'s incoming migration on {@code uri}, run by {@code executor}; returns
   * once it listens or failed before listening ({@link #uri()} is then null).
   *
   * @throws IOException when it neither listened nor failed within 60 s
   */
  public static IncomingLoad start(MachineHost destination, String uri, Executor executor)
      throws IOException, InterruptedException {
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
              } finally {
                listening.countDown();
              }
            },
            executor);
    if (!listening.await(LISTEN_TIMEOUT_S, TimeUnit.SECONDS)) {
      throw new IOException("incoming migration on " + uri + ": not listening after " + LISTEN_TIMEOUT_S + " s");
    }
    return new IncomingLoad(uri, done, bound, failure);
  }

  /**
   * As {@link #start(MachineHost, String, Executor)} on the common pool, and failing at once when it
   * could not listen.
   *
   * @throws IOException naming the URI and the cause when it did not listen
   */
  public static IncomingLoad listen(MachineHost destination, String uri) throws IOException, InterruptedException {
    IncomingLoad in = start(destination, uri, java.util.concurrent.ForkJoinPool.commonPool());
    if (in.uri() == null) {
      Throwable t = in.failure.get();
      throw new IOException("incoming migration on " + uri + ": " + (t == null ? "did not listen" : t.getMessage()), t);
    }
    return in;
  }

  /** The address it listens on (a tcp port 0 resolved); null when it failed before listening. */
  public String uri() {
    return bound.get();
  }

  /** Whether the incoming migration ended (loaded or failed). */
  public boolean isDone() {
    return done.isDone();
  }

  /**
   * Waits for the incoming migration to end; returns what it threw, null when it loaded.
   *
   * @throws TimeoutException when it did not end within the timeout
   */
  public Throwable failure(long timeout, TimeUnit unit) throws InterruptedException, TimeoutException {
    try {
      done.get(timeout, unit);
    } catch (ExecutionException e) {
      return e.getCause(); // not reached: the task catches everything into failure
    }
    return failure.get();
  }

  /**
   * Waits for the incoming migration to end; "destination: " and what it threw, or null when it
   * loaded (one line for a report).
   */
  public String error(long timeout, TimeUnit unit) throws InterruptedException, TimeoutException {
    Throwable t = failure(timeout, unit);
    return t == null ? null : "destination: " + t.getMessage();
  }

  @Override
  public String toString() {
    return "incoming migration on " + (uri() == null ? listen : uri());
  }
}
