package dev.ferry.cli.live;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationSettings;
import dev.ferry.transport.InheritedFds;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * One live migration between two {@code ferry run} processes, driven over their QMP monitors: the
 * engine of {@code ferry demo}, the process-level system tests and their fault tests. It owns a temp
 * directory (sockets, FIFOs, serial files, logs, the stream file) and the child processes, and
 * removes both on {@link #close} (unless asked to keep the files).
 *
 * <p>Per transport: tcp listens on loopback port 0 and reads the bound port from the destination's
 * ready line; unix uses a socket in the temp dir; exec pairs {@code exec:cat > FIFO} (source) with
 * {@code exec:cat FIFO} (destination); fd hands each side one end of a socket pair as its fd 3 (so
 * the source migrates to {@code fd:3}); file migrates into a file and starts the destination
 * afterwards with {@code --incoming file:PATH}.
 *
 * <p>When the JVM exits before {@link #close} (Ctrl-C, SIGTERM), a shutdown hook closes every open
 * one, so an interrupted demo leaves neither processes nor its temp directory behind.
 */
public final class LiveMigration implements AutoCloseable {
  private static final java.util.Set<LiveMigration> OPEN = java.util.concurrent.ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("ferry-live-cleanup").unstarted(
        () -> List.copyOf(OPEN).forEach(LiveMigration::close)));
  }

  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  private static final Duration START_TIMEOUT = Duration.ofSeconds(120);

  /** The transports, by their URI scheme. */
  public enum Transport {
    TCP, UNIX, EXEC, FD, FILE;

    public String scheme() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** Does the stream channel carry a return path (a socket)? */
    public boolean hasReturnPath() {
      return this == TCP || this == UNIX || this == FD;
    }

    public static Transport of(String s) {
      try {
        return valueOf(s.strip().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("unknown transport '" + s + "' (tcp, unix, exec, fd, file)");
      }
    }
  }

  /**
   * What to migrate and how.
   *
   * @param maxBandwidthBytesPerSec null = the engine's default
   * @param downtimeLimitMs null = the engine's default
   * @param dirtyRateBytesPerSec null = the program's default
   * @param destinationPaused start the destination with {@code --paused} (checks before it runs)
   * @param workingSetBytes {@code workingset}'s working set; null = the program's default
   * @param workingSetBaseBytes where it starts; null = the program's default
   */
  public record Spec(
      long memoryBytes,
      String program,
      Transport transport,
      Long maxBandwidthBytesPerSec,
      Long downtimeLimitMs,
      Long dirtyRateBytesPerSec,
      boolean xbzrle,
      boolean destinationPaused,
      Long workingSetBytes,
      Long workingSetBaseBytes,
      boolean postcopy) {

    /** Without postcopy or working-set settings. */
    public Spec(long memoryBytes, String program, Transport transport, Long maxBandwidthBytesPerSec, Long downtimeLimitMs,
        Long dirtyRateBytesPerSec, boolean xbzrle, boolean destinationPaused) {
      this(memoryBytes, program, transport, maxBandwidthBytesPerSec, downtimeLimitMs, dirtyRateBytesPerSec, xbzrle, destinationPaused,
          null, null, false);
    }

    public Spec withDestinationPaused(boolean p) {
      return new Spec(memoryBytes, program, transport, maxBandwidthBytesPerSec, downtimeLimitMs, dirtyRateBytesPerSec, xbzrle, p,
          workingSetBytes, workingSetBaseBytes, postcopy);
    }

    public Spec withMaxBandwidth(Long bytesPerSec) {
      return new Spec(memoryBytes, program, transport, bytesPerSec, downtimeLimitMs, dirtyRateBytesPerSec, xbzrle, destinationPaused,
          workingSetBytes, workingSetBaseBytes, postcopy);
    }

    public Spec withWorkingSet(Long bytes, Long baseBytes) {
      return new Spec(memoryBytes, program, transport, maxBandwidthBytesPerSec, downtimeLimitMs, dirtyRateBytesPerSec, xbzrle,
          destinationPaused, bytes, baseBytes, postcopy);
    }

    /**
     * With {@code postcopy-ram} on both sides: the destination starts with {@code ferry run
     * --postcopy} (also {@code postcopy-blocktime}), the source gets the capability with the others.
     */
    public Spec withPostcopy(boolean p) {
      return new Spec(memoryBytes, program, transport, maxBandwidthBytesPerSec, downtimeLimitMs, dirtyRateBytesPerSec, xbzrle,
          destinationPaused, workingSetBytes, workingSetBaseBytes, p);
    }
  }

  /** Where a destination listens and where the source sends. */
  public record Endpoint(int index, String listenUri, String connectUri, Integer sourceFd, Integer destinationFd) {}

  private final Spec spec;
  private final Path dir;
  private boolean keepFiles;
  // synchronized: startDestinationAndSource starts the two children from two threads
  private final List<FerryChild> children = Collections.synchronizedList(new ArrayList<>());
  private final List<Integer> rawFds = Collections.synchronizedList(new ArrayList<>());
  private volatile FerryChild source;
  private volatile FerryChild destination;
  private volatile Endpoint endpoint;
  private int endpoints;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();
  /** Drives (id, size) both machines get: each its own image in {@link #dir}, or one shared image. */
  private final List<Drive> drives = new ArrayList<>();
  private boolean sharedStorage;
  private boolean blockIncremental;

  /** A drive of both machines: {@code id} and size in bytes. */
  public record Drive(String id, long sizeBytes) {}

  /**
   * Gives both machines these drives. Without {@code sharedStorage} each machine has its own image
   * ({@code source-ID.raw}, {@code destination-ID.raw}) and {@link #migrate()} asks for block
   * migration ({@code blk}); with it both open the same image ({@code shared-ID.raw}) and the stream
   * carries no disk data. Call before starting the machines.
   */
  public void drives(List<Drive> list, boolean shared) {
    drives.clear();
    drives.addAll(list);
    sharedStorage = shared;
  }

  public List<Drive> drives() {
    return List.copyOf(drives);
  }

  /**
   * Makes {@link #migrate()}'s block migration incremental ({@code inc}): chunks the destination's
   * fresh image already holds (zeros) are not sent.
   */
  public void blockIncremental(boolean on) {
    blockIncremental = on;
  }

  /** The image of drive {@code id} of {@code role} ({@code source}, {@code destination}). */
  public Path driveImage(String role, String id) {
    return dir.resolve((sharedStorage ? "shared" : role.startsWith("destination") ? "destination" : "source") + "-" + id + ".raw");
  }

  public LiveMigration(Spec spec, boolean keepFiles) throws IOException {
    this.spec = spec;
    this.keepFiles = keepFiles;
    this.dir = Files.createTempDirectory("ferry-live-");
    OPEN.add(this);
  }

  /**
   * The machine types of the two sides ({@code ferry run --machine}); null: the default (newest).
   * Different types make a migration that the destination refuses (for tests of that refusal).
   */
  public LiveMigration machineTypes(String sourceType, String destinationType) {
    this.sourceMachineType = sourceType;
    this.destinationMachineType = destinationType;
    return this;
  }

  private String sourceMachineType;
  private String destinationMachineType;

  public Spec spec() {
    return spec;
  }

  public Path dir() {
    return dir;
  }

  /** Keep the temp dir at {@link #close} (or not): decided late, e.g. only when a check failed. */
  public void keepFiles(boolean keep) {
    this.keepFiles = keep;
  }

  public FerryChild source() {
    return source;
  }

  public FerryChild destination() {
    return destination;
  }

  public Endpoint endpoint() {
    return endpoint;
  }

  /** A fresh endpoint (socket, FIFO, socket pair or file) for the next destination. */
  public Endpoint newEndpoint() throws IOException, InterruptedException {
    return newEndpoint(spec.transport());
  }

  /**
   * A fresh endpoint of transport {@code t}, which may differ from the spec's (a retry after a
   * failed {@code fd:} migration goes over unix: a running source cannot be handed a new
   * descriptor at birth).
   */
  public Endpoint newEndpoint(Transport t) throws IOException, InterruptedException {
    int i = endpoints++;
    Endpoint e = switch (t) {
      case TCP -> new Endpoint(i, "tcp:127.0.0.1:0", null, null, null);
      case UNIX -> {
        String u = "unix:" + dir.resolve("mig-" + i + ".sock");
        yield new Endpoint(i, u, u, null, null);
      }
      case EXEC -> {
        Path fifo = dir.resolve("mig-" + i + ".fifo");
        Process p = new ProcessBuilder("mkfifo", fifo.toString()).redirectErrorStream(true).start();
        if (p.waitFor() != 0) {
          throw new IOException("mkfifo " + fifo + " failed: " + new String(p.getInputStream().readAllBytes()).strip());
        }
        yield new Endpoint(i, "exec:cat " + quote(fifo), "exec:cat > " + quote(fifo), null, null);
      }
      case FD -> {
        int[] pair = InheritedFds.socketPair();
        rawFds.add(pair[0]);
        rawFds.add(pair[1]);
        yield new Endpoint(i, "fd:3", "fd:3", pair[0], pair[1]);
      }
      case FILE -> {
        String f = "file:" + dir.resolve("mig-" + i + ".stream");
        yield new Endpoint(i, f, f, null, null);
      }
    };
    endpoint = e;
    return e;
  }

  private static String quote(Path p) {
    return "'" + p.toString().replace("'", "'\\''") + "'";
  }

  private List<String> machineArgs(String role) {
    List<String> a = new ArrayList<>(List.of(
        "--memory", (spec.memoryBytes() >> 10) + "K", // a bare number would be MiB
        "--program", spec.program(),
        "--serial", dir.resolve(role + ".serial").toString()));
    if (spec.dirtyRateBytesPerSec() != null) {
      a.add("--dirty-rate");
      a.add(Long.toString(spec.dirtyRateBytesPerSec()));
    }
    if (spec.workingSetBytes() != null) {
      a.add("--working-set");
      a.add((spec.workingSetBytes() >> 10) + "K");
    }
    if (spec.workingSetBaseBytes() != null) {
      a.add("--working-set-base");
      a.add(Long.toString(spec.workingSetBaseBytes()));
    }
    String type = role.equals("source") ? sourceMachineType : destinationMachineType;
    if (type != null) {
      a.add("--machine");
      a.add(type);
    }
    for (Drive d : drives) {
      a.add("--drive");
      a.add("file=" + driveImage(role, d.id()).toString().replace(",", ",,") + ",id=" + d.id() + ",size=" + d.sizeBytes());
    }
    return a;
  }

  /** Starts the source (running its program) and connects to its monitor. */
  public FerryChild startSource() throws IOException, InterruptedException {
    if (endpoint == null) {
      newEndpoint(); // fd: the source needs its end of the pair at birth
    }
    Map<Integer, Integer> fds = new HashMap<>();
    if (endpoint.sourceFd() != null) {
      fds.put(3, endpoint.sourceFd());
    }
    List<String> args = machineArgs("source");
    if (endpoint.sourceFd() != null) {
      args.addAll(List.of("--fd", "3")); // fd: takes only a descriptor given for migration
    }
    source = FerryChild.start("source", args, "unix:" + dir.resolve("source.qmp"), fds, dir.resolve("source.log"));
    children.add(source);
    if (endpoint.sourceFd() != null) {
      closeRaw(endpoint.sourceFd()); // the child holds its copy
    }
    configure(source.qmp()); // connecting retries until the monitor is up
    return source;
  }

  /**
   * Starts a destination listening on a fresh endpoint and the source at the same time (two JVMs
   * start in little more than the time of one), and returns once the destination listens and the
   * source's monitor answers. Not for {@code file}, whose destination starts after the migration.
   */
  public void startDestinationAndSource() throws IOException, InterruptedException {
    if (spec.transport() == Transport.FILE) {
      throw new IllegalStateException("a file: destination starts after the source wrote the stream");
    }
    Endpoint e = newEndpoint();
    java.util.concurrent.CompletableFuture<FerryChild> dst = new java.util.concurrent.CompletableFuture<>();
    Thread t = Thread.ofPlatform().name("start-destination").start(() -> {
      try {
        dst.complete(startDestination(e));
      } catch (Throwable x) {
        dst.completeExceptionally(x);
      }
    });
    try {
      startSource();
    } finally {
      t.join();
    }
    try {
      dst.get();
    } catch (java.util.concurrent.ExecutionException x) {
      if (x.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException("starting the destination: " + x.getCause(), x.getCause());
    }
  }

  /** Waits until the source's stress program completed {@code passes} full passes (serial B). */
  public boolean awaitSourcePasses(long passes, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (serialPasses("source") < passes) {
      if (System.nanoTime() - deadline > 0 || !source.alive()) {
        return false;
      }
      Thread.sleep(20);
    }
    return true;
  }


  /**
   * Starts a destination listening on the current endpoint (a new one after the first) and waits
   * until it listens; returns it. For {@code file} call it after the source wrote the file.
   */
  public FerryChild startDestination() throws IOException, InterruptedException {
    if (endpoint == null || destination != null) {
      newEndpoint();
    }
    return startDestination(endpoint);
  }

  /**
   * Starts a destination on endpoint {@code e} (one from {@link #newEndpoint}; for {@code file}
   * after the source wrote it), makes it the current endpoint and destination, waits until it
   * listens and returns it.
   */
  public FerryChild startDestination(Endpoint e) throws IOException, InterruptedException {
    endpoint = e;
    Map<Integer, Integer> fds = new HashMap<>();
    if (endpoint.destinationFd() != null) {
      fds.put(3, endpoint.destinationFd());
    }
    int n = endpoint.index();
    List<String> args = machineArgs(n == 0 ? "destination" : "destination-" + n);
    args.add("--incoming");
    args.add(endpoint.listenUri());
    args.add("--mem-prealloc"); // as QEMU destinations often run: no page fault per incoming page
    if (spec.destinationPaused()) {
      args.add("--paused");
    }
    if (spec.postcopy()) {
      args.add("--postcopy");
    }
    String name = n == 0 ? "destination" : "destination-" + n;
    destination = FerryChild.start(name, args, "unix:" + dir.resolve(name + ".qmp"), fds, dir.resolve(name + ".log"));
    children.add(destination);
    if (endpoint.destinationFd() != null) {
      closeRaw(endpoint.destinationFd()); // the child holds its copy
    }
    destination.awaitReady(START_TIMEOUT);
    if (endpoint.connectUri() == null) {
      String bound = destination.boundIncomingUri();
      if (bound == null) {
        throw new IOException("destination's ready line names no incoming URI: " + destination.lines());
      }
      endpoint = new Endpoint(endpoint.index(), endpoint.listenUri(), bound, endpoint.sourceFd(), endpoint.destinationFd());
    }
    return destination;
  }

  private void closeRaw(int fd) throws IOException {
    if (rawFds.remove((Integer) fd)) {
      InheritedFds.close(fd);
    }
  }

  /** Sets capabilities and parameters of the spec on the source. */
  private void configure(QmpClient q) throws IOException, InterruptedException {
    MigrationSettings s = new MigrationSettings()
        .capability(MigrationCapability.EVENTS, true)
        .capability(MigrationCapability.RETURN_PATH, spec.transport().hasReturnPath())
        .capability(MigrationCapability.XBZRLE, spec.xbzrle());
    if (spec.postcopy()) {
      s.capability(MigrationCapability.POSTCOPY_RAM, true);
      // Ferry: also switch on its own once precopy stops converging (before --postcopy-after)
      s.capability(MigrationCapability.FERRY_AUTO_POSTCOPY, true);
    }
    if (spec.maxBandwidthBytesPerSec() != null) {
      s.parameter(MigrationParameter.MAX_BANDWIDTH, spec.maxBandwidthBytesPerSec());
    }
    if (spec.downtimeLimitMs() != null) {
      s.parameter(MigrationParameter.DOWNTIME_LIMIT, spec.downtimeLimitMs());
    }
    apply(q, s);
  }

  /** Sends {@code s} to the monitor {@code q}: migrate-set-capabilities, then migrate-set-parameters (each when set). */
  public static void apply(QmpClient q, MigrationSettings s) throws IOException {
    if (s.hasCapabilities()) {
      execute(q, "migrate-set-capabilities", s.capabilitiesArguments());
    }
    if (s.hasParameters()) {
      execute(q, "migrate-set-parameters", s.parametersArguments());
    }
  }

  /** Runs a QMP command; a QMP error becomes an IOException naming the command. */
  public static JsonNode execute(QmpClient q, String command, ObjectNode args) throws IOException {
    try {
      return q.execute(command, args);
    } catch (QmpError e) {
      throw new IOException(command + ": " + e.getMessage(), e);
    }
  }

  /** Tells the source to migrate to the current endpoint. */
  public void migrate() throws IOException, InterruptedException {
    String uri = endpoint.connectUri();
    if (uri == null) {
      throw new IllegalStateException("no destination is listening yet");
    }
    ObjectNode args = F.objectNode().put("uri", uri);
    if (!drives.isEmpty() && !sharedStorage) {
      args.put("blk", true);
      if (blockIncremental) {
        args.put("inc", true);
      }
    }
    execute(source.qmp(), "migrate", args);
  }

  /** Asks the source to switch to postcopy ({@code migrate-start-postcopy}). */
  public void startPostcopy() throws IOException, InterruptedException {
    execute(source.qmp(), "migrate-start-postcopy", null);
  }

  /** The destination's {@code query-migrate}. */
  public MigrationInfo queryDestinationMigrate() throws IOException, InterruptedException {
    return MigrationInfo.fromJson(execute(destination.qmp(), "query-migrate", null));
  }

  /** The source's {@code query-migrate}. */
  public MigrationInfo queryMigrate() throws IOException, InterruptedException {
    return MigrationInfo.fromJson(execute(source.qmp(), "query-migrate", null));
  }

  /**
   * Polls the source's {@code query-migrate} every {@code period} until the status is final
   * (completed, failed, cancelled) and returns the final answer; {@code progress} sees each answer.
   */
  public MigrationInfo awaitEnd(Duration period, Duration timeout, Consumer<MigrationInfo> progress)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      MigrationInfo info = queryMigrate();
      if (progress != null) {
        progress.accept(info);
      }
      if (info.status() != null && isFinal(info.status().qapiName())) {
        return info;
      }
      if (!source.alive()) {
        throw new IOException("the source exited with " + source.exitCodeNow() + ": " + source.lastLine());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IOException("migration not finished after " + timeout.toSeconds() + " s (status "
            + (info.status() == null ? "none" : info.status().qapiName()) + ")");
      }
      Thread.sleep(period.toMillis());
    }
  }

  static boolean isFinal(String status) {
    return status.equals("completed") || status.equals("failed") || status.equals("cancelled");
  }

  /** {@code query-status}'s {@code status} of a child ({@code running}, {@code paused}, ...). */
  public static String runState(FerryChild c) throws IOException, InterruptedException {
    return execute(c.qmp(), "query-status", null).path("status").asText();
  }

  /**
   * The exact comparison of a migration: the stopped source's digest against the destination's,
   * taken after the load and before the destination's guest first ran.
   *
   * @param difference null when equal, else where they first part (block and page, or device section)
   */
  public record DigestComparison(MemoryDigest source, MemoryDigest destination, String difference) {
    public boolean equal() {
      return difference == null;
    }

    /** One line: {@code equal: ram HEX, devices HEX, N bytes} or the first difference. */
    public String summary() {
      return equal()
          ? "equal: ram " + source.ram() + ", devices " + source.devices() + ", " + Units.count(source.bytes()) + " bytes"
          : "MISMATCH: " + difference;
    }
  }

  /** A child's {@code ferry-memory-digest} (a running guest is paused for it), without page digests. */
  public static MemoryDigest digest(FerryChild c) throws IOException, InterruptedException {
    return MemoryDigestInfo.fromJson(execute(c.qmp(), "ferry-memory-digest", null));
  }

  /**
   * The page digests of block {@code name} ({@code length} bytes) of a child, fetched in windows
   * of at most {@link MemoryDigestInfo#MAX_PAGES} pages (one QMP reply each).
   */
  static int[] pageDigests(FerryChild c, String name, long length) throws IOException, InterruptedException {
    int[] all = new int[Math.toIntExact(length / 4096)];
    long window = (long) MemoryDigestInfo.MAX_PAGES * 4096;
    for (long off = 0; off < length; off += window) {
      long len = Math.min(window, length - off);
      ObjectNode args = F.objectNode().put("pages", true).put("block", name).put("offset", off).put("length", len);
      int[] part = MemoryDigestInfo.pages(execute(c.qmp(), "ferry-memory-digest", args), name);
      if (part == null || part.length != len / 4096) {
        throw new IOException(c + " returned no page digests for block '" + name + "' at offset " + off);
      }
      System.arraycopy(part, 0, all, (int) (off / 4096), part.length);
    }
    return all;
  }

  /**
   * Compares the source's digest with the destination's; call it after a completed migration with
   * the source stopped ({@code postmigrate}) and the destination loaded and still paused (a spec
   * with {@code destinationPaused}; see {@link #awaitDestinationLoaded}). On a mismatch both sides
   * are asked again with page digests, so the difference names the first differing page.
   */
  public DigestComparison compareDigests() throws IOException, InterruptedException {
    String srcState = runState(source);
    String dstState = runState(destination);
    if (srcState.equals("running") || !dstState.equals("paused")) {
      throw new IllegalStateException(
          "digest comparison needs a stopped source and a paused destination; source is " + srcState
              + ", destination is " + dstState);
    }
    return compareDigests(source, destination);
  }

  /**
   * Compares the digests of two stopped children (see {@link #compareDigests()}, which also checks
   * their run states): on a mismatch the first differing block's page digests are fetched from both,
   * in windows, so the difference names the first differing page.
   */
  public static DigestComparison compareDigests(FerryChild source, FerryChild destination)
      throws IOException, InterruptedException {
    MemoryDigest src = digest(source);
    MemoryDigest dst = digest(destination);
    Optional<String> diff = src.firstDifference(dst);
    String block = diff.isPresent() ? firstDifferingBlock(src, dst) : null;
    if (block != null) {
      // both sides are stopped, so the second pass sees what the first saw
      long length = src.blocks().stream().filter(b -> b.name().equals(block)).findFirst().orElseThrow().length();
      MemoryDigest srcPages = withPages(src, block, pageDigests(source, block, length));
      MemoryDigest dstPages = withPages(dst, block, pageDigests(destination, block, length));
      diff = Optional.of(srcPages.firstDifference(dstPages).orElse(diff.get() + " (equal on a second pass)"));
    }
    return new DigestComparison(src, dst, diff.orElse(null));
  }

  /** The first block whose name and length match on both sides but whose content differs, or null. */
  private static String firstDifferingBlock(MemoryDigest a, MemoryDigest b) {
    for (int i = 0; i < Math.min(a.blocks().size(), b.blocks().size()); i++) {
      MemoryDigest.Block x = a.blocks().get(i);
      MemoryDigest.Block y = b.blocks().get(i);
      if (!x.name().equals(y.name()) || x.length() != y.length()) {
        return null; // the block lists differ: firstDifference says how
      }
      if (!x.digest().equals(y.digest())) {
        return x.name();
      }
    }
    return null;
  }

  private static MemoryDigest withPages(MemoryDigest d, String block, int[] pages) {
    return new MemoryDigest(d.algorithm(), d.ram(), d.devices(), d.bytes(), d.blocks(), d.sections(), Map.of(block, pages));
  }

  /**
   * Waits until the destination finished loading and stays paused (started with {@code --paused}):
   * its run state is {@code paused}. Fails when it exits or the timeout passes.
   */
  public void awaitDestinationLoaded(Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    String st;
    while (!(st = runState(destination)).equals("paused")) {
      if (!destination.alive()) {
        throw new IOException("the destination exited with " + destination.exitCodeNow() + ": " + destination.lastLine());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IOException("the destination is " + st + ", not loaded and paused, after " + timeout.toSeconds() + " s");
      }
      Thread.sleep(20);
    }
  }

  /** Runs the destination's guest ({@code cont}), after the checks on its memory as it arrived. */
  public void continueDestination() throws IOException, InterruptedException {
    execute(destination.qmp(), "cont", null);
  }

  /** Count of {@code B}s in a side's serial file ({@code source}, {@code destination}, ...). */
  public long serialPasses(String role) {
    try {
      byte[] b = Files.readAllBytes(dir.resolve(role + ".serial"));
      long n = 0;
      for (byte x : b) {
        if (x == 'B') {
          n++;
        }
      }
      return n;
    } catch (IOException e) {
      return 0;
    }
  }

  /** Waits until the destination's serial shows more than {@code after} {@code B}s; true if so. */
  public boolean awaitDestinationPass(long after, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    String role = destination.name();
    while (serialPasses(role) <= after) {
      if (System.nanoTime() - deadline > 0 || !destination.alive()) {
        return false;
      }
      Thread.sleep(20);
    }
    return true;
  }

  /** Kills every child and removes the temp dir unless files are kept. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    OPEN.remove(this);
    for (FerryChild c : List.copyOf(children)) {
      c.close();
    }
    for (int fd : List.copyOf(rawFds)) {
      try {
        closeRaw(fd);
      } catch (IOException e) {
        // best effort at teardown
      }
    }
    if (!keepFiles) {
      try (Stream<Path> s = Files.walk(dir)) {
        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // a temp dir left behind is harmless
      }
    }
  }
}
