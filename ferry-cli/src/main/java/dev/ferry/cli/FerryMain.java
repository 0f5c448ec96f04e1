package dev.ferry.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ferry} command. Each subcommand is its own class in this package. */
@Command(
    name = "ferry",
    mixinStandardHelpOptions = true,
    version = "ferry 0.1.0 (QEMU 7.2 migration stream)",
    description = "Live migration and snapshots for JVM machines, speaking QEMU 7.2's migration stream.",
    subcommands = {
      CommandLine.HelpCommand.class,
      AnalyzeCommand.class,
      MonitorCommand.class,
      RunCommand.class,
      MigrateCommand.class,
      DemoCommand.class,
      VmstateCommand.class,
      dev.ferry.cli.soak.SoakCommand.class
    })
public final class FerryMain implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(execute(args));
  }

  /** Runs the command line and returns the exit code (for tests). */
  public static int execute(String... args) {
    CommandLine cl = new CommandLine(new FerryMain());
    CommandLine.IParameterExceptionHandler standard = cl.getParameterExceptionHandler();
    cl.setParameterExceptionHandler(
        (ex, rest) -> {
          String sub = ex.getCommandLine().getCommandName();
          if (!sub.equals("run") && !sub.equals("migrate")) {
            return standard.handleParseException(ex, rest);
          }
          // run and migrate: one line, as their other errors
          ex.getCommandLine()
              .getErr()
              .println("ferry " + sub + ": " + ex.getMessage() + " (see 'ferry " + sub + " --help')");
          return ex.getCommandLine().getCommandSpec().exitCodeOnInvalidInput();
        });
    return cl.execute(args);
  }
}
