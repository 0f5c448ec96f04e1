package dev.ferry.api;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.io.DataInput;
import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** {@link DataOutput}/{@link DataInput} views of the migration stream, for {@link LegacyState}. */
final class StreamAdapters {
  private StreamAdapters() {}

  static DataOutput output(MigrationOutput out) {
    return new DataOutputStream(
        new OutputStream() {
          @Override
          public void write(int b) throws IOException {
            out.writeU8(b & 0xff);
          }

          @Override
          public void write(byte[] b, int off, int len) throws IOException {
            out.writeBytes(b, off, len);
          }
        });
  }

  /**
   * Reads exactly what is asked: {@link DataInputStream} only ever asks for the bytes of the value
   * it reads, so nothing of the next section is consumed.
   */
  static DataInput input(MigrationInput in) {
    return new DataInputStream(
        new InputStream() {
          @Override
          public int read() throws IOException {
            return in.readU8();
          }

          @Override
          public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
              return 0;
            }
            in.readFully(b, off, len);
            return len;
          }

          @Override
          public long skip(long n) throws IOException {
            in.skip(n);
            return n;
          }
        });
  }
}
