package dev.ferry.testing;

import dev.ferry.machine.IncomingLoad;
import dev.ferry.machine.MachineHost;
import java.util.concurrent.Executor;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;

/**
 * An in-process destination for tests: the engine's {@link IncomingLoad}, with an assertion in
 * {@link #await}.
 */
public final class Incoming {
  private final IncomingLoad load;

  private Incoming(IncomingLoad load) {
    this.load = load;
  }

  /** Starts {@code destination}'s incoming migration on {@code uri}; returns once it listens. */
  public static Incoming listen(MachineHost destination, String uri) throws Exception {
    return listen(destination, uri, ForkJoinPool.commonPool());
  }

  /** As {@link #listen(MachineHost, String)}, the incoming run by {@code executor}. */
  public static Incoming listen(MachineHost destination, String uri, Executor executor) throws Exception {
    return new Incoming(IncomingLoad.start(destination, uri, executor));
  }

  /** The address it listens on (a tcp port 0 resolved). */
  public String uri() {
    return load.uri();
  }

  /** Whether the incoming migration ended (loaded or failed). */
  public boolean isDone() {
    return load.isDone();
  }

  /** Waits for the incoming migration to end; returns what it threw, null when it loaded. */
  public Throwable failure(long timeout, TimeUnit unit) throws Exception {
    return load.failure(timeout, unit);
  }

  /** Waits for the incoming migration to end; throws if it failed. */
  public void await(long timeout, TimeUnit unit) throws Exception {
    Throwable t = failure(timeout, unit);
    if (t != null) {
      throw new AssertionError("the incoming migration failed: " + t, t);
    }
  }
}
