package dev.ferry.qmp;

import java.util.Objects;

/**
 * A QMP error: an error class and a human-readable description. The backend throws it to fail a
 * command (the server turns it into {@code {"error": {"class", "desc"}}}); {@link QmpClient} throws
 * it when the server answers with an error.
 */
public final class QmpError extends Exception {
  private final QmpErrorClass errorClass;
  private final String desc;

  public QmpError(QmpErrorClass errorClass, String desc) {
    super(errorClass.wireName() + ": " + desc);
    this.errorClass = Objects.requireNonNull(errorClass, "errorClass");
    this.desc = Objects.requireNonNull(desc, "desc");
  }

  /** A {@code GenericError}, the class of nearly every QEMU error. */
  public static QmpError generic(String desc) {
    return new QmpError(QmpErrorClass.GENERIC_ERROR, desc);
  }

  public QmpErrorClass errorClass() {
    return errorClass;
  }

  public String desc() {
    return desc;
  }
}
