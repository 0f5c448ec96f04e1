package dev.ferry.vmstate.codec;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.vmstate.VMStateDescription;
import java.io.IOException;
import java.util.Objects;

/**
 * The wire side of a {@link VMStateDescription}: writing an object's body (and its vmdesc) and
 * reading one back. The description is public API; its wire format is not, so these live in an
 * internal package (exported only to Ferry's own modules) and reach the description's
 * package-private interpreter through an {@link Access} it installs when its class initialises
 * (the JDK's "shared secrets" pattern). The section stream ({@code savevm}) calls these.
 */
public final class VMStateCodec {
  /** The interpreter of the {@code vmstate} package; installed once by {@link VMStateDescription}. */
  public interface Access {
    /** See {@link VMStateCodec#save(VMStateDescription, MigrationOutput, Object, QemuJsonWriter)}. */
    <T> void save(VMStateDescription<T> d, MigrationOutput out, T obj, QemuJsonWriter desc) throws IOException;

    /** See {@link VMStateCodec#load}. */
    <T> void load(VMStateDescription<T> d, MigrationInput in, T obj, int streamVersion) throws IOException;
  }

  private static volatile Access access;

  private VMStateCodec() {}

  /**
   * Called once, by {@link VMStateDescription}'s class initialiser.
   *
   * @throws IllegalStateException on a second call
   */
  public static synchronized void install(Access a) {
    if (access != null) {
      throw new IllegalStateException("the VMState codec is installed already");
    }
    access = Objects.requireNonNull(a, "access");
  }

  private static Access access() {
    Access a = access;
    if (a == null) {
      // a description exists only once its class initialised, which installs the access
      throw new IllegalStateException("the VMState codec is not installed");
    }
    return a;
  }

  /** Writes {@code obj}'s body (no header; subsections included). */
  public static <T> void save(VMStateDescription<T> d, MigrationOutput out, T obj) throws IOException {
    access().save(d, out, obj, null);
  }

  /**
   * Writes {@code obj}'s body and describes it into {@code desc}, a JSON object the caller has
   * open: adds {@code vmsd_name}, {@code version}, {@code fields} and, when one was sent, {@code
   * subsections}, exactly as QEMU 7.2's vmdesc does ({@code desc} null: no description).
   */
  public static <T> void save(VMStateDescription<T> d, MigrationOutput out, T obj, QemuJsonWriter desc)
      throws IOException {
    access().save(d, out, obj, desc);
  }

  /**
   * Reads a body written at {@code streamVersion} into {@code obj}: version checks, preLoad,
   * fields, subsections, postLoad. Every failure is a {@link
   * dev.ferry.stream.MigrationStreamException} naming the field path and offset.
   */
  public static <T> void load(VMStateDescription<T> d, MigrationInput in, T obj, int streamVersion)
      throws IOException {
    access().load(d, in, obj, streamVersion);
  }
}
