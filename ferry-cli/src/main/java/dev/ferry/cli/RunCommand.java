package dev.ferry.cli;

import dev.ferry.machine.GuestPrograms;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineType;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.ProgramOptions;
import dev.ferry.machine.RunState;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.MonitorAddress;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpServer;
import dev.ferry.qmp.engine.EngineBackend;
import dev.ferry.transport.MigrationFds;
import dev.ferry.transport.MigrationUri;
import dev.ferry.transport.TlsObjects;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry run}: runs a machine in this process, served on QMP monitors, until {@code quit} on
 * a monitor or SIGINT/SIGTERM. It can start fresh, load a named snapshot ({@code --loadvm}), or wait
 * for an incoming migration ({@code --incoming URI}, or {@code defer} for {@code migrate-incoming}).
 *
 * <p>When ready it prints exactly one line on stderr, {@link #READY_PREFIX} followed by {@code
 * key=value} fields separated by {@code "; "} — tests and {@code ferry demo} read the bound monitor
 * and incoming addresses from it (a tcp port 0 is resolved there):
 *
 * <pre>
 * ferry: ready; program=stress; memory=64 MiB; vcpus=1; machine=ferry-1.1; state=running; qmp=unix:/tmp/s.qmp; incoming=tcp:127.0.0.1:40123
 * </pre>
 *
 * {@code qmp} lists every monitor, comma-separated ({@code none} without one); {@code incoming} is
 * present only when waiting for a migration ({@code defer} until {@code migrate-incoming}, which then
 * prints {@value #LISTENING_PREFIX} and the bound URI). When an incoming migration has loaded it
 * prints {@value #LOADED_PREFIX} and the run state.
 *
 * <p>Exit codes: 0 after {@code quit}; 2 for a bad option (one line on stderr); 1 for a runtime
 * failure (a monitor that cannot listen, a missing snapshot, a failed incoming load — the machine
 * then never runs). SIGINT/SIGTERM stop the machine cleanly (serial flushed); the exit code is then
 * the JVM's for the signal.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = "Run a machine, served on QMP monitors, until 'quit' or SIGINT/SIGTERM.")
public final class RunCommand implements java.util.concurrent.Callable<Integer> {
  /** Start of the ready line on stderr. */
  public static final String READY_PREFIX = "ferry: ready; ";
  /** With {@code --incoming defer}: printed once {@code migrate-incoming} listens, then the bound URI. */
  public static final String LISTENING_PREFIX = "ferry: incoming listening; incoming=";
  /** Start of the line printed when an incoming migration has loaded. */
  public static final String LOADED_PREFIX = "ferry: incoming migration loaded; state=";
  /** Default {@code --memory}: QEMU's default {@code -m}. */
  static final long DEFAULT_MEMORY_BYTES = 128L << 20;

  @Option(
      names = "--memory",
      paramLabel = "SIZE",
      converter = CliSizes.MemorySize.class,
      description = "guest RAM: a number with K/M/G/T (powers of 1024); a bare number is MiB, as QEMU's -m (default: 128M). RAM is mapped lazily: a 8G guest costs only the pages it touches.")
  long memoryBytes = DEFAULT_MEMORY_BYTES;

  @Option(
      names = "--mem-prealloc",
      description = "commit all guest RAM at start, in the background (QEMU's -mem-prealloc): an incoming migration then pays no page fault per page")
  boolean memPrealloc;

  @Option(
      names = "--program",
      paramLabel = "NAME",
      description =
          "guest program: stress, random, fill, workingset or idle (default: stress). The program travels with the machine: an"
              + " incoming migration or --loadvm runs the program its state names; given explicitly, a state naming"
              + " another program is refused")
  String program;

  @Option(
      names = "--dirty-rate",
      paramLabel = "RATE",
      converter = CliSizes.Rate.class,
      description = "bytes/s with K/M/G suffixes: the dirty rate of 'random' (default 64M) and the sweep speed of 'stress' (default 512M)")
  Long dirtyRateBytesPerSec;

  @Option(
      names = "--working-set",
      paramLabel = "SIZE",
      converter = CliSizes.MemorySize.class,
      description = "workingset: the RAM it keeps dirtying, K/M/G suffixes, a bare number is MiB (default: 64M); unpaced unless --dirty-rate is given")
  Long workingSetBytes;

  @Option(
      names = "--working-set-base",
      paramLabel = "OFFSET",
      converter = CliSizes.ByteSize.class,
      description = "workingset: where the working set starts in guest RAM, bytes with K/M/G suffixes, a multiple of 4K (default: 0)")
  Long workingSetBaseBytes;

  @Option(names = "--vcpus", paramLabel = "N", description = "vCPUs, 1..64 (default: 1)")
  int vcpus = 1;

  @Option(
      names = {"--machine", "-M"},
      paramLabel = "TYPE",
      description =
          "machine type (QEMU's -M): ferry-1.0 or ferry-1.1 (default: the newest). It pins the layout of the saved"
              + " state, so a destination runs the type the source runs; 'help' lists the types")
  String machineType;

  @Option(names = "--serial", paramLabel = "FILE", description = "append the serial port's output to FILE, '-' for stdout (default: discarded)")
  String serial;

  @Option(
      names = "--incoming",
      paramLabel = "URI",
      description = "wait for an incoming migration on URI (tcp:HOST:PORT, unix:PATH, exec:CMD, fd:N, file:PATH); 'defer' waits for migrate-incoming on the monitor")
  String incoming;

  @Option(
      names = "--fd",
      paramLabel = "N",
      description =
          "descriptor N was inherited for a migration: 'migrate fd:N' may use it (repeatable). fd: takes only"
              + " such descriptors, the one of --incoming fd:N, and ones passed over the monitor with getfd")
  List<Integer> fds = new ArrayList<>();

  @Option(names = "--snapshot-dir", paramLabel = "DIR", description = "directory of named snapshots (default: ./ferry-snapshots)")
  Path snapshotDir = Path.of("ferry-snapshots");

  @Option(names = "--loadvm", paramLabel = "NAME", description = "start from snapshot NAME of the snapshot directory")
  String loadvm;

  @Option(
      names = "--postcopy",
      description = "capabilities postcopy-ram and postcopy-blocktime on from the start (QEMU: -global migration.x-postcopy-ram=on): an --incoming migration may switch to postcopy")
  boolean postcopy;

  @Option(
      names = "--mapped-ram",
      description = "capability mapped-ram on from the start (QEMU 9.0): migrate file:PATH writes every page at a fixed offset of the file, and --incoming file:PATH reads such a file (both sides need it)")
  boolean mappedRam;

  @Option(names = {"--paused", "-S"}, description = "start paused (as QEMU -S); with --incoming: stay paused after the load")
  boolean paused;

  @Option(
      names = "--qmp",
      paramLabel = "URI",
      description = "serve a QMP monitor on unix:PATH or tcp:HOST:PORT[,tls-creds=ID[,tls-authz=ID]] (repeatable). Without TLS a tcp monitor listens on loopback only; another address needs ,insecure=on. A unix socket a live process still serves is refused, a stale one replaced")
  List<String> qmp = new ArrayList<>();

  @Option(
      names = "--object",
      paramLabel = "TYPE,id=ID,...",
      description = "create an object as QEMU's -object: tls-creds-x509,id=ID,dir=DIR,endpoint=server|client[,verify-peer=on|off]; authz-simple,id=ID,identity=DN (',,' for a comma in the DN); authz-list,id=ID[,policy=deny|allow],rules.N.match=DN,rules.N.policy=allow|deny[,rules.N.format=exact|glob] (repeatable)")
  List<String> objects = new ArrayList<>();

  @Option(
      names = "--drive",
      paramLabel = "file=PATH,id=NAME[,size=SIZE][,format=raw]",
      description = "attach the raw disk image PATH as drive NAME (repeatable). A missing file is created sparse with size= (K/M/G suffixes, a bare number is bytes); an existing one must have that size. With --incoming the drive is the destination's: it migrates with block migration (migrate -b), or is the same image the source uses (shared storage), which this machine writes only once the migration completed")
  List<String> drives = new ArrayList<>();

  /** One parsed {@code --drive}. */
  record DriveOption(String id, Path file, long sizeBytes) {
    /**
     * Parses {@code file=PATH,id=NAME[,size=SIZE][,format=raw]} (QEMU's -drive keys; ',,' is a comma
     * in PATH).
     *
     * @throws IllegalArgumentException naming the bad key or value
     */
    static DriveOption parse(String text) {
      String file = null;
      String id = null;
      long size = 0;
      for (String p : dev.ferry.transport.TlsObjects.splitKeyval(text)) {
        int eq = p.indexOf('=');
        if (eq <= 0) {
          throw new IllegalArgumentException("expected key=value, got '" + p + "'");
        }
        String k = p.substring(0, eq);
        String v = p.substring(eq + 1);
        switch (k) {
          case "file" -> file = v;
          case "id" -> id = v;
          case "size" -> size = dev.ferry.qmp.Sizes.parse(v, 'B');
          case "format" -> {
            if (!v.equals("raw")) {
              throw new IllegalArgumentException("format '" + v + "' is not supported (Ferry's images are raw)");
            }
          }
          default -> throw new IllegalArgumentException("unknown key '" + k + "' (known: file, id, size, format)");
        }
      }
      if (file == null || file.isEmpty()) {
        throw new IllegalArgumentException("file= is missing");
      }
      if (id == null || id.isEmpty()) {
        throw new IllegalArgumentException("id= is missing (the device name the block migration carries)");
      }
      return new DriveOption(id, Path.of(file), size);
    }
  }

  @Option(names = "--tls-creds", paramLabel = "ID", description = "migration parameter tls-creds from the start (QEMU: -global migration.tls-creds=ID): migrations in and out run inside TLS with the tls-creds-x509 object ID")
  String tlsCreds;

  @Option(names = "--tls-authz", paramLabel = "ID", description = "migration parameter tls-authz: the authz-list/authz-simple object that says which client certificates an incoming migration accepts")
  String tlsAuthz;

  @Option(names = "--tls-hostname", paramLabel = "NAME", description = "migration parameter tls-hostname: the name the destination's certificate must carry (default: the host of the URI)")
  String tlsHostname;

  @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

  /**
   * A service that brings its own machine, built through Ferry's API (ferry-kv): {@link
   * #runService} serves it as {@code ferry run} serves a built-in machine — the same monitors and
   * monitor commands, incoming migration, ready line and exit codes.
   */
  public interface Service {
    /** The command's name: the prefix of its messages and the ready line's {@code program}. */
    String name();

    /** Guest RAM in bytes, for the ready line. */
    long memoryBytes();

    /** Builds the machine, once, after the options were checked. */
    dev.ferry.api.FerryMachine build();

    /**
     * Starts serving clients once the monitors are up (the machine runs, or waits for its incoming
     * state); returns what the ready line adds, as {@code "; key=value"} fields.
     */
    String start() throws IOException;

    /** Stops serving clients; called before the machine closes. */
    void stop();
  }

  /** Set by {@link #runService}: the machine comes from it instead of --program. */
  private Service service;

  /**
   * Runs {@code service}'s machine in this process until {@code quit} on a monitor or
   * SIGINT/SIGTERM, as {@code ferry run} with these options does; returns the exit code.
   */
  public static int runService(Service service, List<String> qmp, String incoming, boolean paused, Path snapshotDir) {
    RunCommand r = new RunCommand();
    r.service = java.util.Objects.requireNonNull(service, "service");
    r.qmp = new ArrayList<>(qmp);
    r.incoming = incoming;
    r.paused = paused;
    r.snapshotDir = snapshotDir;
    r.memoryBytes = service.memoryBytes();
    return r.call();
  }

  /** "ferry run", or the service's name, before each message. */
  private String name() {
    return service == null ? "ferry run" : service.name();
  }

  /** Thrown inside {@link #call} to end with a one-line message and an exit code. */
  private static final class Exit extends Exception {
    final int code;

    Exit(int code, String message) {
      super(message);
      this.code = code;
    }
  }

  private final CompletableFuture<Integer> finished = new CompletableFuture<>();
  private final CountDownLatch cleanedUp = new CountDownLatch(1);

  @Override
  public Integer call() {
    PrintStream err = System.err;
    try {
      return runMachine(err);
    } catch (Exit e) {
      err.println(name() + ": " + e.getMessage());
      return e.code;
    } finally {
      cleanedUp.countDown();
    }
  }

  private void usage(String message) throws Exit {
    throw new Exit(2, message + " (see '" + name() + " --help')");
  }

  /** The program options of {@code --dirty-rate}, {@code --working-set}, {@code --working-set-base} (null = default). */
  private ProgramOptions programOptions(Long dirtyRate, Long workingSet, Long workingSetBase) throws Exit {
    ProgramOptions o = ProgramOptions.defaults();
    try {
      if (dirtyRate != null) {
        o = o.withDirtyRateBytesPerSec(dirtyRate);
      }
      if (workingSet != null || workingSetBase != null) {
        o = o.withWorkingSet(workingSet != null ? workingSet : o.workingSetBytes(), workingSetBase != null ? workingSetBase : o.workingSetBaseBytes());
      }
    } catch (IllegalArgumentException e) {
      usage(e.getMessage());
    }
    return o;
  }

  private int runMachine(PrintStream err) throws Exit {
    // the first migration's one-time work (JDK sockets, JFR events, engine classes) now, in the
    // background, rather than in that migration's setup-time
    dev.ferry.migration.MigrationWarmup.startInBackground();
    // ---- options that need more than a converter
    boolean programGiven = program != null;
    if (service != null) {
      program = service.name();
    } else if (!programGiven) {
      program = "stress";
    }
    if (service == null && !GuestPrograms.names().contains(program)) {
      usage("unknown program '" + program + "' (known: " + String.join(", ", GuestPrograms.names()) + ")");
    }
    if (vcpus < 1 || vcpus > 64) {
      usage("--vcpus must be 1..64, got " + vcpus);
    }
    if ("help".equals(machineType)) {
      System.out.println("Supported machines are:");
      System.out.println(MachineType.describeAll());
      System.out.flush();
      return 0;
    }
    MachineType type = MachineType.newest();
    if (machineType != null) {
      try {
        type = MachineType.byName(machineType);
      } catch (IllegalArgumentException e) {
        usage("--machine: " + e.getMessage());
      }
    }
    if (incoming != null && loadvm != null) {
      usage("--incoming and --loadvm exclude each other");
    }
    if (incoming != null && !incoming.equals("defer")) {
      try {
        MigrationUri.parse(incoming);
      } catch (IllegalArgumentException e) {
        usage("bad --incoming URI '" + incoming + "': " + e.getMessage());
      }
    }
    List<MonitorAddress> monitorAddresses = new ArrayList<>();
    for (String q : qmp) {
      try {
        monitorAddresses.add(MonitorAddress.parse(q));
      } catch (IllegalArgumentException e) {
        usage("bad --qmp URI '" + q + "': " + e.getMessage());
      }
      refuseLiveSocket(q);
    }
    List<DriveOption> driveOptions = new ArrayList<>();
    for (String d : drives) {
      try {
        DriveOption o = DriveOption.parse(d);
        if (driveOptions.stream().anyMatch(x -> x.id().equals(o.id()))) {
          usage("bad --drive '" + d + "': Duplicate ID '" + o.id() + "' for drive");
        }
        if (o.sizeBytes() == 0 && !Files.exists(o.file())) {
          usage("bad --drive '" + d + "': image " + o.file() + " does not exist and no size= was given");
        }
        driveOptions.add(o);
      } catch (IllegalArgumentException e) {
        usage("bad --drive '" + d + "': " + e.getMessage());
      }
    }
    List<TlsObjects.ObjectOption> objectOptions = new ArrayList<>();
    for (String o : objects) {
      try {
        objectOptions.add(TlsObjects.parseOption(o));
      } catch (IllegalArgumentException e) {
        usage("bad --object '" + o + "': " + e.getMessage());
      }
    }
    if (loadvm != null) {
      try {
        SnapshotStore.checkName(loadvm);
      } catch (IllegalArgumentException e) {
        usage(e.getMessage());
      }
      Path f = snapshotDir.resolve(loadvm + ".ferry");
      if (!Files.isRegularFile(f)) {
        throw new Exit(1, "snapshot '" + loadvm + "' not found in " + snapshotDir);
      }
    }
    if (incoming != null && incoming.startsWith("file:")) {
      Path f = Path.of(incoming.substring("file:".length()));
      if (!Files.isRegularFile(f) || !Files.isReadable(f)) {
        throw new Exit(1, "cannot read incoming file " + f + ": " + (Files.exists(f) ? "not a readable file" : "no such file"));
      }
    }

    // ---- descriptors inherited for fd: (recorded now; fd: refuses any other number)
    List<Integer> inherited = new ArrayList<>(fds);
    if (incoming != null
        && !incoming.equals("defer")
        && MigrationUri.parse(incoming) instanceof MigrationUri.Fd f
        && f.name() == null) {
      inherited.add(f.fd());
    }
    for (int fd : inherited) {
      try {
        MigrationFds.allowInherited(fd);
      } catch (IOException e) {
        throw new Exit(1, e.getMessage());
      }
    }

    // ---- the machine
    ProgramOptions programOptions = programOptions(dirtyRateBytesPerSec, workingSetBytes, workingSetBaseBytes);
    OutputStream serialOut = openSerial();
    Machine machine;
    MachineHost host;
    if (service != null) {
      try {
        host = dev.ferry.machine.EmbedderBridge.hostOf(service.build());
        machine = host.machine();
      } catch (RuntimeException | OutOfMemoryError e) {
        closeQuietly(serialOut);
        throw new Exit(1, cannotCreate(e));
      }
    } else {
      try {
        Machine.Builder mb =
            Machine.builder()
                .machineType(type)
                .memory(memoryBytes)
                .memPrealloc(memPrealloc)
                .program(program)
                .pinProgram(programGiven)
                .programOptions(programOptions)
                .vcpus(vcpus)
                .serial(serialOut);
        for (DriveOption d : driveOptions) {
          // a destination owns its images only once the migration completed (shared storage)
          mb.drive(d.id(), d.file(), d.sizeBytes(), incoming != null);
        }
        machine = mb.build();
      } catch (java.io.UncheckedIOException e) {
        closeQuietly(serialOut);
        throw new Exit(1, e.getMessage());
      } catch (IllegalArgumentException e) {
        closeQuietly(serialOut);
        if (!driveOptions.isEmpty() && e.getMessage() != null && e.getMessage().startsWith("drive '")) {
          throw new Exit(1, e.getMessage());
        }
        throw new Exit(1, cannotCreate(e));
      } catch (RuntimeException | OutOfMemoryError e) {
        closeQuietly(serialOut);
        throw new Exit(1, cannotCreate(e));
      }
      host = new MachineHost(machine);
    }
    SnapshotStore store = new SnapshotStore(snapshotDir, host);
    EngineBackend backend = new EngineBackend(host, store);
    backend.onQuit(() -> finished.complete(0));
    List<QmpServer> servers = new ArrayList<>();
    Thread hook = Thread.ofPlatform().unstarted(this::onSignal);
    try {
      Runtime.getRuntime().addShutdownHook(hook);
      for (TlsObjects.ObjectOption o : objectOptions) {
        try {
          host.migration().objects().add(o.qomType(), o.props());
        } catch (IllegalArgumentException e) {
          throw new Exit(2, "bad --object " + o.qomType() + ": " + e.getMessage() + " (see '" + name() + " --help')");
        } catch (IOException e) {
          throw new Exit(1, "cannot create " + o.qomType() + " '" + o.props().get("id") + "': " + e.getMessage());
        }
      }
      Map<String, Object> tlsParams = new LinkedHashMap<>();
      if (tlsCreds != null) {
        tlsParams.put("tls-creds", tlsCreds);
      }
      if (tlsAuthz != null) {
        tlsParams.put("tls-authz", tlsAuthz);
      }
      if (tlsHostname != null) {
        tlsParams.put("tls-hostname", tlsHostname);
      }
      if (!tlsParams.isEmpty()) {
        host.migration().setParameters(tlsParams);
      }
      if (postcopy) {
        host.migration().setCapabilities(Map.of(
            dev.ferry.migration.MigrationCapability.POSTCOPY_RAM, true,
            dev.ferry.migration.MigrationCapability.POSTCOPY_BLOCKTIME, true));
      }
      if (mappedRam) {
        host.migration().setCapabilities(Map.of(dev.ferry.migration.MigrationCapability.MAPPED_RAM, true));
      }
      host.migration().onIncomingRefused(line -> err.println(name() + ": " + line));
      for (MonitorAddress m : monitorAddresses) {
        try {
          QmpServer server = QmpServer.start(m, new QmpDispatcher(backend), host.migration().objects());
          server.onRefused(line -> err.println(name() + ": " + line));
          servers.add(server);
          if (m.insecure()) {
            err.println(name() + ": warning: QMP monitor " + server.uri()
                + " has no TLS and is not on loopback: whoever reaches it controls this machine");
          }
        } catch (IOException | IllegalArgumentException e) {
          throw new Exit(1, "cannot serve QMP on " + m.uri() + ": " + e.getMessage());
        }
      }
      String monitors = servers.isEmpty() ? "none" : String.join(",", servers.stream().map(QmpServer::uri).toList());
      String serviceFields = "";
      if (service != null) {
        try {
          serviceFields = service.start();
        } catch (IOException | RuntimeException e) {
          throw new Exit(1, "cannot start " + service.name() + ": " + CliErrors.describe(e));
        }
      }
      String ready =
          READY_PREFIX
              + "program=" + program
              + "; memory=" + dev.ferry.qmp.Sizes.exact(memoryBytes)
              + "; vcpus=" + machine.cpus().size()
              + "; machine=" + machine.machineType().name()
              + (machine.drives().isEmpty()
                  ? ""
                  : "; drives=" + String.join(",", machine.drives().stream()
                      .map(d -> d.name() + ":" + dev.ferry.qmp.Sizes.exact(d.sizeBytes())).toList()))
              + "; state=@STATE@"
              + "; qmp=" + monitors
              + serviceFields;

      if (incoming != null) {
        backend.setAutostart(!paused);
        backend.setIncomingObserver(
            new EngineBackend.IncomingObserver() {
              @Override
              public void listening(String boundUri) {
                if (incoming.equals("defer")) {
                  err.println(LISTENING_PREFIX + boundUri);
                } else {
                  err.println(ready.replace("@STATE@", machine.runState().qapiName()) + "; incoming=" + boundUri);
                }
              }

              @Override
              public void loaded(RunState sourceRunState) {
                err.println(LOADED_PREFIX + machine.runState().qapiName());
              }

              @Override
              public void failed(String uri, Exception error) {
                err.println(name() + ": incoming migration on " + uri + " failed: " + CliErrors.describe(error));
                finished.complete(1);
              }

              @Override
              public void postcopyPaused(String uri, Exception error) {
                // the guest lives here now: keep the process (and its monitor) up
                err.println(name() + ": incoming postcopy migration on " + uri + " paused: " + CliErrors.describe(error));
              }
            });
        if (incoming.equals("defer")) {
          backend.deferIncoming();
          err.println(ready.replace("@STATE@", machine.runState().qapiName()) + "; incoming=defer");
        } else {
          backend.startIncoming(incoming);
        }
      } else {
        if (loadvm != null) {
          try {
            store.load(loadvm);
          } catch (NoSuchFileException e) {
            throw new Exit(1, "snapshot '" + loadvm + "' not found in " + snapshotDir);
          } catch (IOException | RuntimeException e) {
            throw new Exit(1, "cannot load snapshot '" + loadvm + "' from " + snapshotDir + ": " + CliErrors.describe(e));
          }
        }
        if (paused) {
          machine.stop(RunState.PAUSED);
        } else {
          machine.resume();
        }
        err.println(ready.replace("@STATE@", machine.runState().qapiName()));
      }
      int code;
      try {
        code = finished.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        code = 1;
      } catch (ExecutionException e) {
        code = 1;
      }
      return code;
    } finally {
      if (service != null) {
        try {
          service.stop();
        } catch (RuntimeException e) {
          err.println(name() + ": stopping: " + CliErrors.describe(e));
        }
      }
      for (QmpServer s : servers) {
        try {
          s.close();
        } catch (IOException e) {
          err.println(name() + ": closing monitor " + s.uri() + ": " + e.getMessage());
        }
      }
      host.migration().cancel();
      host.close(); // stops the vCPUs and flushes the serial port
      if (serialOut != System.out) {
        closeQuietly(serialOut);
      } else {
        System.out.flush();
      }
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down (a signal): the hook waits for this cleanup
      }
    }
  }

  /**
   * A {@code unix:} monitor path whose socket a live process still serves is refused: replacing it
   * would leave that process unreachable (and our exit would delete its socket). Only a socket
   * nobody accepts on (a crashed process's) is left for the server to replace.
   */
  private static void refuseLiveSocket(String uri) throws Exit {
    if (!uri.startsWith("unix:")) {
      return;
    }
    Path p = Path.of(uri.substring("unix:".length()));
    if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (java.nio.channels.SocketChannel ch =
        java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(p))) {
      throw new Exit(1, "--qmp " + uri + ": a running process serves this socket (a connection was accepted);"
          + " quit it or choose another path");
    } catch (IOException e) {
      // refused or not a socket: stale, the server replaces it (or says why it cannot)
    }
  }

  /** SIGINT/SIGTERM: end the run loop and wait (bounded) until the machine is closed. */
  private void onSignal() {
    finished.complete(0);
    try {
      cleanedUp.await(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private OutputStream openSerial() throws Exit {
    if (serial == null) {
      return OutputStream.nullOutputStream();
    }
    if (serial.equals("-")) {
      return System.out;
    }
    try {
      return Files.newOutputStream(Path.of(serial), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (IOException e) {
      throw new Exit(1, "cannot open serial output " + serial + ": " + CliErrors.describe(e));
    }
  }

  private static void closeQuietly(OutputStream o) {
    try {
      o.close();
    } catch (IOException e) {
      // nothing left to do with a broken serial sink at exit
    }
  }

  /** Why the machine could not be built, naming its --memory. */
  private String cannotCreate(Throwable e) {
    return "cannot create the machine with --memory " + dev.ferry.qmp.Sizes.exact(memoryBytes) + ": " + CliErrors.describe(e);
  }
}
