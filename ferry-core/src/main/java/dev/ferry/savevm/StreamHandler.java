package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import java.io.IOException;

/**
 * What {@link StreamReader} reports while it walks a stream. Section bodies have no length on the
 * wire, so {@link #section} must consume exactly the body; the reader then checks the footer.
 * Errors thrown here get the section's context and offset added by the reader.
 */
public interface StreamHandler {
  /** The configuration section (only when the reader expects one). */
  default void configuration(Configuration config, long offset) throws IOException {}

  /**
   * A section: START or FULL (full header) or PART or END (header resolved through the START).
   * Reads the whole body from {@code in}.
   */
  void section(SectionHeader header, MigrationInput in) throws IOException;

  /** A command; PACKAGED is announced here, then its contents are reported as usual. */
  default void command(StreamCommand command, long offset) throws IOException {}

  /** The end of a PACKAGED blob's contents. */
  default void packagedEnd(long offset) throws IOException {}

  /** The EOF byte of the main stream (or of a package). */
  default void eof(long offset) throws IOException {}

  /**
   * The vmdesc after EOF: the JSON text, or null when the reader skipped it (see {@link
   * StreamReader.Options#keepVmdesc}).
   */
  default void vmdesc(String json, long length, long offset) throws IOException {}
}
