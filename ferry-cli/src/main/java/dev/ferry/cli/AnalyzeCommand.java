package dev.ferry.cli;

import dev.ferry.cli.analyze.Analysis;
import java.io.PrintWriter;
import java.nio.file.Path;
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

  @Option(names = {"-v", "--verbose"}, description = "print the stack trace of an error")
  boolean verbose;

  @Option(
      names = "--max-ram",
      paramLabel = "BYTES",
      description = "largest total RAM accepted from the stream (default 1 TiB)",
      defaultValue = "1099511627776")
  long maxRamBytes;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    try {
      if (dump != null && !dump.equals("state") && !dump.equals("desc")) {
        throw new IllegalArgumentException("--dump must be 'state' or 'desc', not '" + dump + "'");
      }
      Analysis.run(file, dump, extractDir, maxRamBytes, out);
      out.flush();
      return 0;
    } catch (Exception | OutOfMemoryError | StackOverflowError e) {
      out.flush();
      err.println("ferry analyze: " + Analysis.message(e));
      if (verbose) {
        e.printStackTrace(err);
      }
      err.flush();
      return 1;
    }
  }
}
