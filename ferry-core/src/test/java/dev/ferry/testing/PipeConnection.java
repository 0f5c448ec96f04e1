package dev.ferry.testing;

import dev.ferry.migration.MigrationConnection;
import java.io.IOException;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** An in-process connection pair over two NIO pipes: what one side writes, the other reads. */
public final class PipeConnection implements MigrationConnection {
  private final WritableByteChannel out;
  private final ReadableByteChannel in;
  private final String name;

  private PipeConnection(WritableByteChannel out, ReadableByteChannel in, String name) {
    this.out = out;
    this.in = in;
    this.name = name;
  }

  /** [source, destination]. */
  public static PipeConnection[] pair() throws IOException {
    Pipe forward = Pipe.open();
    Pipe back = Pipe.open();
    return new PipeConnection[] {
      new PipeConnection(forward.sink(), back.source(), "pipe:source"),
      new PipeConnection(back.sink(), forward.source(), "pipe:destination")
    };
  }

  @Override public WritableByteChannel output() { return out; }
  @Override public ReadableByteChannel input() { return in; }
  @Override public boolean supportsReturnPath() { return true; }
  @Override public String describe() { return name; }

  @Override
  public void shutdown() {
    try {
      out.close();
      in.close();
    } catch (IOException ignored) {
      // best effort
    }
  }

  @Override
  public void close() throws IOException {
    out.close();
    in.close();
  }
}
