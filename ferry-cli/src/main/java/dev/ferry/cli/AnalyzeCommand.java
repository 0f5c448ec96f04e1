package dev.ferry.cli;

import dev.ferry.cli.analyze.Analysis;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry analyze FILE}: decodes a migration stream file (QEMU's or Ferry's, gzip accepted)
 * and prints a listing, QEMU analyzer's JSON ({@code --dump state|desc}), or extracts RAM blocks.
 */
@Command(
    name = "analyze",
    mixinStandardHelpOptions = true,
    description = {
      "Decode a migration stream file (QEMU 7.2 format; gzip accepted).",
      "Without --dump: a listing of every section and command with its stream offset, and RAM statistics."
    })
public final class AnalyzeCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(index = "0", paramLabel = "FILE", description = "stream file (raw or gzip)")
  Path file;

  @Option(
      names = "--dump",
      paramLabel = "state|desc",
      description = "print the device state (state) or the vmdesc (desc) as QEMU's analyze-migration.py does")
  String dump;

  @Option(names = "--extract", paramLabel = "DIR", description = "write each RAM block, desc.json and state.json into DIR")
  Path extractDir;

  @Option(
      names = "--return-path",
      paramLabel = "FILE",
      description = "also decode this recorded return path (destination to source; raw or gzip) and list its messages")
  Path returnPath;

  @Option(
      names = "--multifd-channel",
      paramLabel = "FILE",
      description = {
        "a recorded QEMU 7.2 multifd channel connection (source to destination; raw or gzip), repeated once per channel"
            + " in any order: decoded, listed and replayed into RAM at the main stream's RAM EOS records"
      })
  List<Path> multifdChannels = new ArrayList<>();

  @Option(
      names = "--continues",
      paramLabel = "FIRST",
      description = "FILE is a postcopy recovery connection (no header): decode it as the continuation of the connection recorded in FIRST (raw or gzip), which ended cut in postcopy")
  Path continues;

  @CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

  @Option(
      names = "--max-ram",
      paramLabel = "BYTES",
      description = "largest total RAM accepted from the stream (default 1 TiB)",
      defaultValue = "1099511627776")
  long maxRamBytes = 1L << 40;

  @Override
  public Integer call() {
    return run(spec.commandLine().getOut(), spec.commandLine().getErr());
  }

  /** Runs the analysis with the options set; returns the exit code. */
  int run(PrintWriter out, PrintWriter err) {
    try {
      if (dump != null && !dump.equals("state") && !dump.equals("desc")) {
        throw new IllegalArgumentException("--dump must be 'state' or 'desc', not '" + dump + "'");
      }
      checkPaths();
      Analysis.run(file, dump, extractDir, maxRamBytes, returnPath, multifdChannels, continues, out);
      out.flush();
      return 0;
    } catch (Exception | OutOfMemoryError | StackOverflowError e) {
      out.flush();
      err.println("ferry analyze: " + (e instanceof java.nio.file.FileSystemException ? CliErrors.describe(e) : Analysis.message(e)));
      if (verbose.verbose) {
        e.printStackTrace(err);
      }
      err.flush();
      return 1;
    }
  }

  /** The input file and the --extract directory, checked before the stream is read. */
  private void checkPaths() throws java.io.IOException {
    checkFile(file, file + ": Is a directory (FILE is a migration stream file)");
    for (Path c : multifdChannels) {
      checkFile(c, "--multifd-channel " + c + ": Is a directory");
    }
    if (extractDir != null) {
      try {
        Files.createDirectories(extractDir);
      } catch (java.io.IOException e) {
        throw new IllegalArgumentException("--extract " + extractDir + ": cannot create the directory: " + reason(e));
      }
      if (!Files.isWritable(extractDir)) {
        throw new IllegalArgumentException("--extract " + extractDir + ": not a writable directory");
      }
    }
  }

  /** {@code f} exists and is no directory ({@code ifDirectory} says so otherwise). */
  private static void checkFile(Path f, String ifDirectory) throws java.nio.file.NoSuchFileException {
    if (Files.isDirectory(f)) {
      throw new IllegalArgumentException(ifDirectory);
    }
    if (!Files.exists(f)) {
      throw new java.nio.file.NoSuchFileException(f.toString());
    }
  }

  private static String reason(java.io.IOException e) {
    String d = CliErrors.describe(e);
    int colon = d.lastIndexOf(": ");
    return e instanceof java.nio.file.FileSystemException && colon >= 0 ? d.substring(colon + 2) : d;
  }
}
