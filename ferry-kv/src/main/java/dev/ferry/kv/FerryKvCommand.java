package dev.ferry.kv;

import dev.ferry.api.FerryMachine;
import dev.ferry.cli.CliErrors;
import dev.ferry.cli.CliSizes;
import dev.ferry.cli.FerryMain;
import dev.ferry.cli.RunCommand;
import dev.ferry.kv.store.KvState;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry-kv}: a Redis-protocol key-value server whose keyspace lives in a Ferry machine's
 * RAM, run as {@code ferry run} runs a machine — the same QMP monitors and commands ({@code
 * ferry-memory-digest} included), incoming migration, ready line and exit codes — so that {@code
 * ferry migrate} moves it live. The ready line adds {@code kv=HOST:PORT}, the bound address (a
 * {@code --port 0} resolved).
 */
@Command(
    name = "ferry-kv",
    mixinStandardHelpOptions = true,
    version = "ferry-kv 0.1.0 (RESP2, Redis " + KvCommands.REDIS_VERSION + " commands)",
    description = "A Redis-protocol key-value server whose keyspace lives in Ferry guest RAM and migrates live with 'ferry migrate'.")
public final class FerryKvCommand implements Callable<Integer>, RunCommand.Service {
  @Option(names = "--port", paramLabel = "PORT", description = "TCP port of the Redis protocol (default: 6379; 0: any free port, see the ready line)")
  int port = 6379;

  @Option(names = "--bind", paramLabel = "HOST", description = "address to listen on (default: 127.0.0.1)")
  String bind = "127.0.0.1";

  @Option(
      names = "--memory",
      paramLabel = "SIZE",
      converter = CliSizes.MemorySize.class,
      description = "guest RAM for the keyspace, K/M/G suffixes, a bare number is MiB (default: 64M); a write that does not fit gets Redis's OOM error")
  long memoryBytes = 64L << 20;

  @Option(names = "--workers", paramLabel = "N", description = "worker threads that run commands as guest steps, 1..64 (default: 2)")
  int workers = 2;

  @Option(
      names = "--qmp",
      paramLabel = "URI",
      description = "serve a QMP monitor on unix:PATH or tcp:HOST:PORT (repeatable), as 'ferry run --qmp'")
  List<String> qmp = new ArrayList<>();

  @Option(
      names = "--incoming",
      paramLabel = "URI",
      description = "wait for an incoming migration on URI (tcp:HOST:PORT, unix:PATH, ...; 'defer' for migrate-incoming), as 'ferry run --incoming'; clients wait until it loaded")
  String incoming;

  @Option(names = {"--paused", "-S"}, description = "start paused; with --incoming: stay paused after the load (clients wait until 'cont')")
  boolean paused;

  @Option(names = "--snapshot-dir", paramLabel = "DIR", description = "directory of named snapshots (default: ./ferry-snapshots)")
  Path snapshotDir = Path.of("ferry-snapshots");

  @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  private KvState state;
  private FerryMachine machine;
  private KvServer server;

  public static void main(String[] args) {
    System.exit(FerryMain.executeCommand(new FerryKvCommand(), args));
  }

  @Override
  public Integer call() {
    if (port < 0 || port > 65535) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--port must be 0..65535, got " + port);
    }
    if (workers < 1 || workers > 64) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--workers must be 1..64, got " + workers);
    }
    return RunCommand.runService(this, qmp, incoming, paused, snapshotDir);
  }

  @Override
  public String name() {
    return "ferry-kv";
  }

  @Override
  public long memoryBytes() {
    return memoryBytes;
  }

  @Override
  public FerryMachine build() {
    state = new KvState(memoryBytes);
    machine = FerryKvGuest.configure(FerryMachine.builder(), memoryBytes, state).build();
    return machine;
  }

  @Override
  public String start() throws IOException {
    server = KvServer.start(FerryKvGuest.attach(machine, state), new InetSocketAddress(bind, port), workers);
    return "; kv=" + bind + ":" + server.port();
  }

  @Override
  public void stop() {
    if (server != null) {
      try {
        server.close();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("closing the kv server on port " + server.port(), e);
      }
    }
  }
}
