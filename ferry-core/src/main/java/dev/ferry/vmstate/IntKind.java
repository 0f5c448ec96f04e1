package dev.ferry.vmstate;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.IOException;

/**
 * The eight integer element encoders: width in bytes, signedness, the vmdesc type name and the
 * value range a scalar must lie in when saved. Unsigned 64-bit values travel as the raw bits of a
 * Java {@code long}; every other kind is range-checked on save.
 */
enum IntKind {
  INT8("int8", 1, true),
  UINT8("uint8", 1, false),
  INT16("int16", 2, true),
  UINT16("uint16", 2, false),
  INT32("int32", 4, true),
  UINT32("uint32", 4, false),
  INT64("int64", 8, true),
  UINT64("uint64", 8, false);

  final String typeName;
  final int widthBytes;
  final boolean signed;
  final long min;
  final long max;

  IntKind(String typeName, int widthBytes, boolean signed) {
    this.typeName = typeName;
    this.widthBytes = widthBytes;
    this.signed = signed;
    if (widthBytes == 8) {
      this.min = Long.MIN_VALUE;
      this.max = Long.MAX_VALUE;
    } else if (signed) {
      this.min = -(1L << (widthBytes * 8 - 1));
      this.max = (1L << (widthBytes * 8 - 1)) - 1;
    } else {
      this.min = 0;
      this.max = (1L << (widthBytes * 8)) - 1;
    }
  }

  /** True when {@code v} fits (64-bit kinds accept every long: uint64 is carried as raw bits). */
  boolean fits(long v) {
    return v >= min && v <= max;
  }

  void write(MigrationOutput out, long v) throws IOException {
    switch (widthBytes) {
      case 1 -> out.writeU8((int) v);
      case 2 -> out.writeBe16((int) v);
      case 4 -> out.writeBe32((int) v);
      default -> out.writeBe64(v);
    }
  }

  long read(MigrationInput in) throws IOException {
    return switch (this) {
      case INT8 -> in.readS8();
      case UINT8 -> in.readU8();
      case INT16 -> (short) in.readBe16();
      case UINT16 -> in.readBe16();
      case INT32 -> in.readBe32();
      case UINT32 -> in.readBe32Unsigned();
      case INT64, UINT64 -> in.readBe64();
    };
  }

  /** A new backing array for this kind: byte[], short[], int[] or long[] by width. */
  Object newArray(int n) {
    return switch (widthBytes) {
      case 1 -> new byte[n];
      case 2 -> new short[n];
      case 4 -> new int[n];
      default -> new long[n];
    };
  }

  static int length(Object array) {
    return switch (array) {
      case byte[] a -> a.length;
      case short[] a -> a.length;
      case int[] a -> a.length;
      case long[] a -> a.length;
      default -> throw new IllegalStateException("not an integer array: " + array.getClass());
    };
  }

  /** Writes elements [from, to) of a backing array. */
  void writeArray(MigrationOutput out, Object array, int from, int to) throws IOException {
    switch (array) {
      case byte[] a -> out.writeBytes(a, from, to - from);
      case short[] a -> {
        for (int i = from; i < to; i++) {
          out.writeBe16(a[i]);
        }
      }
      case int[] a -> {
        for (int i = from; i < to; i++) {
          out.writeBe32(a[i]);
        }
      }
      case long[] a -> {
        for (int i = from; i < to; i++) {
          out.writeBe64(a[i]);
        }
      }
      default -> throw new IllegalStateException("not an integer array: " + array.getClass());
    }
  }

  /** Reads element {@code i} of a backing array from the stream. */
  void readElement(MigrationInput in, Object array, int i) throws IOException {
    switch (array) {
      case byte[] a -> a[i] = in.readS8();
      case short[] a -> a[i] = (short) in.readBe16();
      case int[] a -> a[i] = in.readBe32();
      case long[] a -> a[i] = in.readBe64();
      default -> throw new IllegalStateException("not an integer array: " + array.getClass());
    }
  }
}
