package dev.ferry.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** Placeholder, replaced below. */
@Command(name = "migrate", mixinStandardHelpOptions = true, description = "Migrate a running machine through its QMP monitor.")
public final class MigrateCommand implements Callable<Integer> {
  @Override
  public Integer call() {
    System.err.println("ferry migrate: not implemented yet");
    return 1;
  }
}
