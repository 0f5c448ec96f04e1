package dev.ferry.migration;

import dev.ferry.ram.RamRecordWriter;
import dev.ferry.savevm.StateSaver;
import dev.ferry.savevm.StreamWriter;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one-time work of a process's first outgoing migration, done ahead in the background so that
 * it is not in that migration's setup-time (the setup phase: from {@code migrate} to {@code
 * active}). A JFR profile of a fresh {@code ferry run} source showed the setup of its first
 * migration spent in: the JDK's first unix-domain socket (its class initialiser seeds a {@code
 * SecureRandom}, which loads the security providers), the socket options' first use (loads {@code
 * InetAddress} and the {@code net}/{@code extnet} libraries), the registration of Ferry's JFR event
 * classes, and loading and initialising the engine classes of the outgoing path. This does the same
 * work once, on a low-priority daemon thread, with throwaway objects: its only connection is an
 * anonymous unix socket pair of its own (one byte each way, for the JDK's socket I/O classes), it
 * listens on nothing and touches no machine. Whatever fails here is only logged (at DEBUG): the migration then
 * does the work itself, as before.
 */
public final class MigrationWarmup {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationWarmup.class);
  private static final AtomicBoolean STARTED = new AtomicBoolean();

  private MigrationWarmup() {}

  /** Starts the warm-up once per process (later calls do nothing); returns at once. */
  public static void startInBackground() {
    if (STARTED.compareAndSet(false, true)) {
      Thread t = Thread.ofPlatform().daemon().name("migration-warmup").unstarted(() -> run());
      t.setPriority(Thread.MIN_PRIORITY);
      t.start();
    }
  }

  /** The warm-up itself, on the calling thread, each step guarded; returns the steps that failed. */
  static List<String> run() {
    List<String> failed = new java.util.ArrayList<>();
    step("sockets", MigrationWarmup::sockets, failed);
    step("events", MigrationWarmup::events, failed);
    step("classes", MigrationWarmup::classes, failed);
    return failed;
  }

  private interface Step {
    void run() throws Exception;
  }

  private static void step(String what, Step s, List<String> failed) {
    try {
      s.run();
    } catch (Exception | LinkageError e) {
      failed.add(what + ": " + e);
      LOG.debug("migration warm-up step '{}' failed (the first migration does it itself): {}", what, e.toString());
    }
  }

  /**
   * Unix and TCP socket channels with their options, opened and closed unconnected; then one byte
   * through a connected unix socket pair (a server bound to a fresh name in the temp directory,
   * deleted after): a first socket write and read load the JDK's socket I/O event classes, which a
   * first migration's setup paid for at its first flush.
   */
  private static void sockets() throws IOException {
    try (SocketChannel unix = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      unix.supportedOptions();
    }
    try (SocketChannel tcp = SocketChannel.open()) {
      tcp.supportedOptions();
    }
    java.nio.file.Path name = null;
    try (java.nio.channels.ServerSocketChannel server = java.nio.channels.ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(null); // a fresh name in the temp directory
      name = ((java.net.UnixDomainSocketAddress) server.getLocalAddress()).getPath();
      try (SocketChannel client = SocketChannel.open(server.getLocalAddress());
          SocketChannel peer = server.accept()) {
        client.write(java.nio.ByteBuffer.wrap(new byte[1]));
        peer.read(java.nio.ByteBuffer.allocate(1));
      }
    } finally {
      if (name != null) {
        java.nio.file.Files.deleteIfExists(name);
      }
    }
  }

  /** Ferry's JFR event classes, registered by making one of each (none is committed). */
  private static void events() {
    new MigrationEvents.Phase().shouldCommit();
    new MigrationEvents.Pass().shouldCommit();
    new MigrationEvents.SwitchOver().shouldCommit();
    new MigrationEvents.ThrottleStep().shouldCommit();
  }

  /**
   * The engine classes the setup of an outgoing migration loads, initialised (the package-private
   * ones by name, next to a public class of their package).
   */
  private static void classes() throws ClassNotFoundException {
    ClassLoader loader = MigrationWarmup.class.getClassLoader();
    List<Class<?>> types = List.of(Transports.class, MigrationOutput.class, RateLimiter.class, StateSaver.class,
        StreamWriter.class, RamRecordWriter.class, OutgoingMigration.class, MigrationStats.class,
        PlainSource.class, SwitchOverPolicy.class);
    for (Class<?> c : types) {
      Class.forName(c.getName(), true, loader);
    }
    for (String name : List.of(
        Transports.class.getPackageName() + ".SocketMigrationChannel",
        Transports.class.getPackageName() + ".NioMigrationChannel",
        RamRecordWriter.class.getPackageName() + ".PageMap",
        RamRecordWriter.class.getPackageName() + ".RamLiveState$Save",
        RamRecordWriter.class.getPackageName() + ".DirtyBitmap",
        StateSaver.class.getPackageName() + ".StateSaver$Session")) {
      Class.forName(name, true, loader);
    }
  }
}
