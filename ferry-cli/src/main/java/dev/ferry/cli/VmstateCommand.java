package dev.ferry.cli;

import dev.ferry.machine.CpuDevice;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MachineType;
import dev.ferry.vmstate.VMStateCompat;
import dev.ferry.vmstate.VMStateDump;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.zip.GZIPInputStream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry vmstate dump|check}: the static descriptions of every device state a Ferry machine
 * registers, as QEMU's {@code -dump-vmstate} JSON, and a check whether a destination build can
 * load what a source build sends, judged from two such dumps (QEMU's
 * {@code vmstate-static-checker.py}). Lets an operator see a layout change break migration before
 * any guest is moved.
 */
@Command(
    name = "vmstate",
    mixinStandardHelpOptions = true,
    description = "Dump a machine's state descriptions, or check two dumps for migration compatibility.",
    subcommands = {CommandLine.HelpCommand.class, VmstateCommand.Dump.class, VmstateCommand.Check.class})
public final class VmstateCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** Exit code of {@code check} for an unreadable or malformed dump. */
  static final int EXIT_BAD_INPUT = 2;

  /** Largest dump file {@code check} reads (real dumps are well under a megabyte). */
  static final long MAX_DUMP_BYTES = 64L << 20;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /**
   * The dump of a small idle machine of the given type and shape: one section per registered idstr
   * that is described by a VMState description (the RAM live section has none), in registration
   * order ({@link MachineHost#vmstateDump()}).
   *
   * @param layout overrides the type's cpu layout; null: the type's (or {@code -Dferry.cpu.layout})
   */
  static VMStateDump dumpOf(CpuDevice.Layout layout, int vcpus, Path diskFile) {
    return dumpOf(MachineType.newest(), layout, vcpus, diskFile);
  }

  /** {@link #dumpOf(CpuDevice.Layout, int, Path)} of a machine of {@code type}. */
  static VMStateDump dumpOf(MachineType type, CpuDevice.Layout layout, int vcpus, Path diskFile) {
    Machine.Builder b = Machine.builder().machineType(type).memory(1L << 20).vcpus(vcpus);
    if (layout != null) {
      b.cpuLayout(layout);
    }
    if (diskFile != null) {
      b.disk(diskFile, 1L << 20);
    }
    try (MachineHost host = new MachineHost(b.build())) {
      return host.vmstateDump();
    }
  }

  /** {@code ferry vmstate dump}. */
  @Command(
      name = "dump",
      mixinStandardHelpOptions = true,
      description = "Print the state descriptions of a Ferry machine as QEMU's -dump-vmstate JSON.")
  static final class Dump implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = {"--machine", "-M"}, paramLabel = "TYPE",
        description = "machine type whose state to describe: ferry-1.0, ferry-1.1 (default: the newest)")
    String machineType;

    @Option(names = "--cpu-layout", paramLabel = "1|2",
        description = "override the cpu state layout the machine type pins (default: -Dferry.cpu.layout, else the type's)")
    Integer cpuLayout;

    @Option(names = "--vcpus", paramLabel = "N", defaultValue = "1", description = "number of vcpus (default 1)")
    int vcpus;

    @Option(names = "--disk", description = "a machine with a disk")
    boolean disk;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "write to FILE instead of standard output")
    Path output;

    @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      Path diskFile = null;
      try {
        MachineType type = machineType == null ? MachineType.newest() : MachineType.byName(machineType);
        CpuDevice.Layout layout = cpuLayout == null ? null : CpuDevice.Layout.ofCode(cpuLayout);
        if (disk) {
          diskFile = Files.createTempFile("ferry-vmstate-dump", ".img");
        }
        String json = dumpOf(type, layout, vcpus, diskFile).toJson();
        if (output != null) {
          Files.writeString(output, json, StandardCharsets.UTF_8);
        } else {
          out.print(json);
          out.flush();
        }
        return 0;
      } catch (IOException | RuntimeException e) {
        err.println("ferry vmstate dump: " + CliErrors.describe(e));
        if (verbose.verbose) {
          e.printStackTrace(err);
        }
        err.flush();
        return 1;
      } finally {
        if (diskFile != null) {
          try {
            Files.deleteIfExists(diskFile);
          } catch (IOException e) {
            err.println("ferry vmstate dump: cannot delete " + diskFile + ": " + e.getMessage());
          }
        }
      }
    }
  }

  /** {@code ferry vmstate check}. */
  @Command(
      name = "check",
      mixinStandardHelpOptions = true,
      description = {
        "Check whether a destination can load what a source sends, from their vmstate dumps, by the rules of"
            + " QEMU's vmstate-static-checker.py (same verdicts, also on QEMU's own -dump-vmstate output).",
        "SRC and DST are dump files (JSON, or gzip-compressed JSON) or names of this build's machine types.",
        "Prints each problem on its own line (warnings too, which do not count).",
        "Exit 0: compatible; 1: problems; 2: a dump is unreadable."
      })
  static final class Check implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SRC", description = "dump of the source build, or a machine type name")
    Path source;

    @Parameters(index = "1", paramLabel = "DST", description = "dump of the destination build, or a machine type name")
    Path dest;

    @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      VMStateDump src;
      VMStateDump dst;
      try {
        src = read(source);
        dst = read(dest);
      } catch (IllegalArgumentException | IOException e) {
        err.println("ferry vmstate check: " + e.getMessage());
        err.flush();
        return EXIT_BAD_INPUT;
      }
      List<VMStateCompat.Finding> findings = VMStateCompat.compare(src, dst);
      findings.forEach(out::println);
      List<VMStateCompat.Finding> problems = findings.stream().filter(VMStateCompat.Finding::error).toList();
      if (problems.isEmpty()) {
        out.println("compatible: " + dest + " can load what " + source + " sends");
      } else {
        out.println(problems.size() + (problems.size() == 1 ? " problem" : " problems")
            + ": " + dest + " cannot load what " + source + " sends");
      }
      out.flush();
      return problems.isEmpty() ? 0 : 1;
    }

    /** A dump file (JSON, gzip accepted), or, when no such file exists, the dump of a machine type of this build. */
    private static VMStateDump read(Path file) throws IOException {
      if (!Files.exists(file) && file.getNameCount() == 1 && MachineType.names().contains(file.toString())) {
        return dumpOf(MachineType.byName(file.toString()), null, 1, null);
      }
      String text;
      try (SeekableByteChannel ch = Files.newByteChannel(file)) {
        if (ch.size() > MAX_DUMP_BYTES) {
          throw new IllegalArgumentException(file + ": " + ch.size() + " bytes, larger than a dump can be ("
              + MAX_DUMP_BYTES + ")");
        }
        text = readText(file);
      } catch (IOException e) {
        throw new IOException(e instanceof java.nio.file.FileSystemException ? CliErrors.describe(e) : file + ": cannot read: " + CliErrors.describe(e), e);
      }
      try {
        return VmstateJson.parse(text);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
      }
    }

    /** The file's text; a gzip file is inflated (at most {@link #MAX_DUMP_BYTES}). */
    private static String readText(Path file) throws IOException {
      byte[] head = new byte[2];
      try (InputStream in = Files.newInputStream(file)) {
        if (in.readNBytes(head, 0, 2) < 2 || (head[0] & 0xff) != 0x1f || (head[1] & 0xff) != 0x8b) {
          return Files.readString(file, StandardCharsets.UTF_8);
        }
      }
      try (InputStream in = new GZIPInputStream(Files.newInputStream(file))) {
        byte[] bytes = in.readNBytes((int) MAX_DUMP_BYTES + 1);
        if (bytes.length > MAX_DUMP_BYTES) {
          throw new IllegalArgumentException(file + ": inflates to more than a dump can be (" + MAX_DUMP_BYTES + " bytes)");
        }
        return new String(bytes, StandardCharsets.UTF_8);
      }
    }
  }
}
