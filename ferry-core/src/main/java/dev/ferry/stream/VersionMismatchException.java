package dev.ferry.stream;

/**
 * A section, subsection or stream whose version lies outside what this side accepts, carrying the
 * incoming version and the accepted range (as Lucene's IndexFormatTooNew/TooOld do).
 */
public final class VersionMismatchException extends MigrationStreamException {
  private final long actual;
  private final long minimum;
  private final long maximum;

  public VersionMismatchException(String what, long actual, long minimum, long maximum) {
    super(describe(what, actual, minimum, maximum));
    this.actual = actual;
    this.minimum = minimum;
    this.maximum = maximum;
  }

  private static String describe(String what, long actual, long minimum, long maximum) {
    String kind = actual > maximum ? "too new" : "too old";
    return what + " version " + actual + " is " + kind + ": this side accepts " + minimum + ".." + maximum;
  }

  public long actual() {
    return actual;
  }

  public long minimum() {
    return minimum;
  }

  public long maximum() {
    return maximum;
  }

  public boolean tooNew() {
    return actual > maximum;
  }
}
