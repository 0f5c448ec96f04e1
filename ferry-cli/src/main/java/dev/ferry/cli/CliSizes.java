package dev.ferry.cli;

import dev.ferry.qmp.Sizes;
import picocli.CommandLine;

/**
 * picocli converters for sizes and rates: the grammar and its error texts are {@link Sizes}' (the
 * same as the human monitor's). A bare number is MiB for {@code --memory} (QEMU's {@code -m}) and
 * bytes everywhere else.
 */
public final class CliSizes {
  private CliSizes() {}

  /** Sizes whose bare number means MiB ({@code --memory}): positive, whole 4 KiB pages. */
  public static final class MemorySize implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      long v;
      try {
        v = Sizes.parse(value, 'M');
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
      if (v <= 0 || v % 4096 != 0) {
        throw new CommandLine.TypeConversionException("'" + value + "' must be a positive multiple of 4 KiB");
      }
      return v;
    }
  }

  /** Sizes in bytes. */
  static final class ByteSize implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      try {
        return Sizes.parse(value, 'B');
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }

  /** Rates in bytes/s ({@code 64M}, {@code 512K/s}); 0 is allowed where the option says what it means. */
  static final class Rate implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      try {
        return Sizes.parseRate(value);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
