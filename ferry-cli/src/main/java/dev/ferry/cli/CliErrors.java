package dev.ferry.cli;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import picocli.CommandLine;

/**
 * One-line error texts for the commands: what failed and where, never a class name or a stack
 * trace (those only with {@code --verbose}).
 */
public final class CliErrors {
  private CliErrors() {}

  /** {@code --verbose}: print the stack trace of an error (every command takes it). */
  public static final class Verbose {
    @CommandLine.Option(names = {"-v", "--verbose"}, description = "log at INFO and print the stack trace of an error")
    boolean verbose;
  }

  /**
   * The error as one line: file errors as {@code PATH: No such file or directory} (the path is in
   * the text), an out-of-memory error as such, otherwise the message (or the kind of error when it
   * has none).
   */
  static String describe(Throwable e) {
    String m;
    if (e instanceof NoSuchFileException f) {
      m = f.getFile() + ": No such file or directory";
    } else if (e instanceof AccessDeniedException f) {
      m = f.getFile() + ": Permission denied";
    } else if (e instanceof NotDirectoryException f) {
      m = f.getFile() + ": Not a directory";
    } else if (e instanceof FileSystemException f) {
      m = f.getFile() + ": " + (f.getReason() != null ? f.getReason() : "cannot access");
    } else if (e instanceof OutOfMemoryError) {
      m = "out of memory: " + e.getMessage();
    } else if (e.getMessage() != null && !e.getMessage().isBlank()) {
      m = e.getMessage();
    } else if (e.getCause() != null && e.getCause() != e) {
      return describe(e.getCause());
    } else {
      m = e.getClass().getSimpleName().replaceAll("(Exception|Error)$", "").replaceAll("([a-z])([A-Z])", "$1 $2").toLowerCase(java.util.Locale.ROOT);
    }
    return m.strip().replace("\r", "").replace('\n', ' ');
  }
}
