package dev.ferry.cli;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code ferry} command. Each subcommand is its own class in this package.
 *
 * <p>Errors, for every command: a bad option or argument is one line on stderr naming the value
 * and the command's {@code --help}, exit 2; an error while running is one line naming what and
 * where, exit 1, with the stack trace only under {@code --verbose}. The engine's log goes to
 * stderr at WARN (INFO with {@code --verbose}); a system property {@code
 * org.slf4j.simpleLogger.defaultLogLevel} set by the user wins.
 */
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
  /**
   * The subcommands by name, as in the annotation. Picocli builds the model of every listed command
   * (loading its option types, the engine for {@code run}) before it parses, which cost a short
   * command such as {@code vmstate} a third of its start-up; {@link #commandLine(String...)} builds
   * only the one that runs. {@code FerryMainTest} keeps it equal to the annotation's list.
   */
  static final Map<String, Class<?>> SUBCOMMANDS = subcommands();

  private static Map<String, Class<?>> subcommands() {
    Map<String, Class<?>> m = new LinkedHashMap<>();
    m.put("analyze", AnalyzeCommand.class);
    m.put("monitor", MonitorCommand.class);
    m.put("run", RunCommand.class);
    m.put("migrate", MigrateCommand.class);
    m.put("demo", DemoCommand.class);
    m.put("vmstate", VmstateCommand.class);
    m.put("soak", dev.ferry.cli.soak.SoakCommand.class);
    return m;
  }

  /** slf4j-simple's level property. */
  static final String LOG_LEVEL_PROPERTY = "org.slf4j.simpleLogger.defaultLogLevel";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  public static void main(String[] args) {
    configureLogging(args);
    System.exit(execute(args));
  }

  /**
   * The log level of this process: WARN, or INFO when {@code --verbose}/{@code -v} is among the
   * arguments. Must run before the first logger is made (slf4j-simple reads it once).
   */
  static void configureLogging(String... args) {
    if (System.getProperty(LOG_LEVEL_PROPERTY) == null) {
      boolean verbose = Arrays.asList(args).contains("--verbose") || Arrays.asList(args).contains("-v");
      System.setProperty(LOG_LEVEL_PROPERTY, verbose ? "info" : "warn");
    }
  }

  /** Runs the command line and returns the exit code (for tests). */
  public static int execute(String... args) {
    Integer fast = FastCommands.tryRun(args);
    return fast != null ? fast : commandLine(args).execute(args);
  }

  /**
   * Runs {@code command}, a picocli command of another of Ferry's programs (ferry-kv), with the
   * {@code ferry} command's logging, error lines and exit codes; returns the exit code.
   */
  public static int executeCommand(Object command, String... args) {
    configureLogging(args);
    return withErrorHandling(new CommandLine(command)).execute(args);
  }

  /** The {@code ferry} command line with all its subcommands and Ferry's error handling. */
  static CommandLine commandLine() {
    return withErrorHandling(new CommandLine(new FerryMain()));
  }

  /**
   * The command line for {@code args}: when the first argument names a subcommand, a {@code ferry}
   * command that has only that one (what runs and what it prints are the same: the same names,
   * usage and errors); otherwise {@link #commandLine()}.
   */
  static CommandLine commandLine(String... args) {
    Class<?> only = args.length > 0 ? SUBCOMMANDS.get(args[0]) : null;
    if (only == null) {
      return commandLine();
    }
    Command top = FerryMain.class.getAnnotation(Command.class);
    CommandLine.Model.CommandSpec spec = CommandLine.Model.CommandSpec.wrapWithoutInspection(new FerryMain())
        .name(top.name())
        .version(top.version())
        .mixinStandardHelpOptions(true);
    spec.usageMessage().description(top.description());
    CommandLine cl = new CommandLine(spec);
    cl.addSubcommand(args[0], only);
    return withErrorHandling(cl);
  }

  private static CommandLine withErrorHandling(CommandLine cl) {
    cl.setParameterExceptionHandler(
        (ex, rest) -> {
          CommandLine sub = ex.getCommandLine();
          String name = sub.getCommandSpec().qualifiedName(" ");
          sub.getErr().println(name + ": " + oneLine(ex.getMessage()) + " (see '" + name + " --help')");
          sub.getErr().flush();
          return sub.getCommandSpec().exitCodeOnInvalidInput();
        });
    cl.setExecutionExceptionHandler(
        (ex, sub, parseResult) -> {
          String name = sub.getCommandSpec().qualifiedName(" ");
          sub.getErr().println(name + ": " + CliErrors.describe(ex));
          if (verbose(parseResult)) {
            ex.printStackTrace(sub.getErr());
          }
          sub.getErr().flush();
          return sub.getCommandSpec().exitCodeOnExecutionException();
        });
    return cl;
  }

  /** Was {@code --verbose} given to the command that ran? */
  static boolean verbose(CommandLine.ParseResult parseResult) {
    for (CommandLine.ParseResult r = parseResult; r != null; r = r.subcommand()) {
      if (r.hasMatchedOption("--verbose")) {
        return true;
      }
    }
    return false;
  }

  private static String oneLine(String s) {
    return s == null ? "" : s.strip().replace("\r", "").replace('\n', ' ');
  }
}
