package dev.ferry.testing;

import dev.ferry.transport.ChannelShutdownException;
import dev.ferry.transport.MigrationChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;

/** An in-process connection pair over two NIO pipes: what one side writes, the other reads. */
public final class PipeConnection implements MigrationChannel {
  private final Pipe.SinkChannel out;
  private final Pipe.SourceChannel in;
  private final String name;
  private volatile boolean shut;

  private PipeConnection(Pipe.SinkChannel out, Pipe.SourceChannel in, String name) {
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

  @Override
  public int read(ByteBuffer dst) throws IOException {
    check();
    return in.read(dst);
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    check();
    return out.write(src);
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    check();
    return out.write(srcs, offset, length);
  }

  private void check() throws IOException {
    if (shut) {
      throw new ChannelShutdownException(name);
    }
  }

  @Override public boolean supportsReturnPath() { return true; }
  @Override public boolean isShutdown() { return shut; }
  @Override public String peerDescription() { return name; }
  @Override public boolean isOpen() { return out.isOpen() || in.isOpen(); }

  @Override
  public void shutdown() {
    shut = true;
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
