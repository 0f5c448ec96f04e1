package dev.ferry.transport;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.NonReadableChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.ScatteringByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code exec:COMMAND}: {@code /bin/sh -c COMMAND} as a child process. Outgoing, the stream goes to
 * its stdin and its stdout goes to /dev/null; incoming, the stream comes from its stdout and its
 * stdin is /dev/null. Its stderr is kept (the last {@value #STDERR_KEEP} bytes) for error messages.
 * No return path.
 *
 * <p>The child's exit status is part of the stream: a read that reaches the end of its stdout, and
 * {@link #close()} of an outgoing channel, wait for the child, and a non-zero status becomes an
 * {@link IOException} with the code and its stderr. {@link #shutdown()} kills the child (and its
 * descendants), which closes the pipes and so wakes a blocked read or write.
 *
 * <p>The stream runs through a {@link FileChannel} on a pipe of our own ({@code pipe2}), not through
 * {@link Process}'s streams: the child gets the other end as stdin (or stdout) by a redirect to
 * {@code /proc/self/fd/N}, which the JDK opens in this process before it starts the child. A
 * gathering write is then one {@code writev} straight from the caller's buffers (guest pages
 * included), where the process stream copied every buffer through a heap array and flushed it with
 * a write of its own; reads scatter the same way. Where that is unavailable (no libc binding, no
 * /proc) the process streams are used as before.
 */
final class ExecMigrationChannel implements MigrationChannel, ScatteringByteChannel {
  private static final Logger LOG = LoggerFactory.getLogger(ExecMigrationChannel.class);
  static final int STDERR_KEEP = 4096;
  private static final long EXIT_WAIT_MS = 30_000;

  private final String command;
  private final boolean writing;
  private final Process process;
  private final InputStream in;
  private final OutputStream out;
  /** Our end of the stream's pipe, or null when the process streams carry it. */
  private final FileChannel pipe;
  private final Thread stderrPump;
  private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
  private final byte[] copy = new byte[64 * 1024];
  private volatile boolean shutdown;
  private volatile boolean closed;
  private boolean exitChecked;

  private ExecMigrationChannel(String command, boolean writing, Process process, FileChannel pipe) {
    this.command = command;
    this.writing = writing;
    this.process = process;
    this.pipe = pipe;
    this.in = writing || pipe != null ? null : process.getInputStream();
    this.out = !writing || pipe != null ? null : process.getOutputStream();
    InputStream err = process.getErrorStream();
    this.stderrPump =
        Thread.ofPlatform()
            .daemon()
            .name("exec-stderr-" + process.pid())
            .start(
                () -> {
                  byte[] b = new byte[1024];
                  try {
                    int n;
                    while ((n = err.read(b)) >= 0) {
                      synchronized (stderr) {
                        stderr.write(b, 0, n);
                        if (stderr.size() > 4 * STDERR_KEEP) {
                          byte[] all = stderr.toByteArray();
                          stderr.reset();
                          stderr.write(all, all.length - STDERR_KEEP, STDERR_KEEP);
                        }
                      }
                    }
                  } catch (IOException e) {
                    // the child went away; what we have is what there is
                  }
                });
  }

  /** Starts {@code /bin/sh -c command}; {@code writing} = outgoing (we feed its stdin). */
  static ExecMigrationChannel start(String command, boolean writing) throws IOException {
    ProcessBuilder pb = new ProcessBuilder("/bin/sh", "-c", command);
    int[] fds = pipeOrNull();
    // the child's end: its stdin (outgoing) or stdout (incoming); ours is the other one
    File childEnd = fds == null ? null : new File("/proc/self/fd/" + (writing ? fds[0] : fds[1]));
    if (writing) {
      pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
      if (childEnd != null) {
        pb.redirectInput(childEnd);
      }
    } else {
      pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      if (childEnd != null) {
        pb.redirectOutput(childEnd);
      }
    }
    Process p;
    FileChannel ours = null;
    try {
      try {
        p = pb.start();
      } catch (IOException e) {
        throw new IOException("exec:" + command + ": cannot start /bin/sh: " + e.getMessage(), e);
      }
      if (fds != null) {
        // the child holds its end now; a pipe reopened through /proc is the same pipe
        Path ourEnd = Path.of("/proc/self/fd/" + (writing ? fds[1] : fds[0]));
        try {
          ours = FileChannel.open(ourEnd, writing ? StandardOpenOption.WRITE : StandardOpenOption.READ);
        } catch (IOException | RuntimeException e) {
          p.destroyForcibly();
          throw new IOException("exec:" + command + ": cannot open the pipe to the command: " + e.getMessage(), e);
        }
      }
    } finally {
      if (fds != null) {
        InheritedFds.closeQuietly(fds[0]);
        InheritedFds.closeQuietly(fds[1]);
      }
    }
    LOG.debug("exec:{} started as pid {}", command, p.pid());
    return new ExecMigrationChannel(command, writing, p, ours);
  }

  /** A close-on-exec pipe {@code [read end, write end]}, or null without libc or /proc. */
  private static int[] pipeOrNull() {
    if (!new File("/proc/self/fd").isDirectory()) {
      return null;
    }
    try {
      return InheritedFds.pipe();
    } catch (IOException | RuntimeException | LinkageError e) {
      LOG.debug("exec: no pipe of our own ({}), using the process streams", e.toString());
      return null;
    }
  }

  /** True when the stream runs through our own pipe (a FileChannel), false on the fallback. */
  boolean streamsThroughPipe() {
    return pipe != null;
  }

  @Override
  public boolean supportsReturnPath() {
    return false;
  }

  @Override
  public String peerDescription() {
    return "exec:" + command;
  }

  /** The tail of what the child wrote to stderr, trimmed, on one line. */
  String stderrTail() {
    byte[] all;
    synchronized (stderr) {
      all = stderr.toByteArray();
    }
    int from = Math.max(0, all.length - STDERR_KEEP);
    String s = new String(all, from, all.length - from, StandardCharsets.UTF_8).strip();
    return s.replace('\n', ' ').replace('\r', ' ');
  }

  /**
   * Waits for the child and returns the error for a non-zero exit, or null. Interrupts are kept
   * pending for the caller.
   */
  private IOException awaitExit(long waitMs) {
    try {
      if (!process.waitFor(waitMs, TimeUnit.MILLISECONDS)) {
        return new IOException(
            peerDescription() + ": the command did not exit within " + waitMs + " ms");
      }
      stderrPump.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new IOException(peerDescription() + ": interrupted while waiting for the command");
    }
    int code = process.exitValue();
    if (code == 0) {
      return null;
    }
    String err = stderrTail();
    return new IOException(
        peerDescription() + ": command exited with code " + code + (err.isEmpty() ? "" : ": " + err));
  }

  private IOException failure(IOException e) {
    if (shutdown) {
      ChannelShutdownException s = new ChannelShutdownException(peerDescription());
      s.initCause(e);
      return s;
    }
    // A broken pipe usually means the child died: report its exit status instead.
    IOException exit = awaitExit(2000);
    if (exit != null) {
      exit.addSuppressed(e);
      return exit;
    }
    return new IOException(peerDescription() + ": " + e.getMessage(), e);
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peerDescription());
    }
    if (writing) {
      throw new NonReadableChannelException();
    }
    int n;
    try {
      if (pipe != null) {
        n = pipe.read(dst);
      } else {
        n = in.read(copy, 0, Math.min(copy.length, dst.remaining()));
        if (n > 0) {
          dst.put(copy, 0, n);
        }
      }
    } catch (IOException e) {
      throw failure(e);
    }
    return ended(n);
  }

  @Override
  public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
    if (pipe == null) {
      for (int i = offset; i < offset + length; i++) {
        if (dsts[i].hasRemaining()) {
          return read(dsts[i]);
        }
      }
      return 0;
    }
    if (shutdown) {
      throw new ChannelShutdownException(peerDescription());
    }
    if (writing) {
      throw new NonReadableChannelException();
    }
    long n;
    try {
      n = pipe.read(dsts, offset, length);
    } catch (IOException e) {
      throw failure(e);
    }
    return n < 0 ? ended(-1) : n;
  }

  @Override
  public long read(ByteBuffer[] dsts) throws IOException {
    return read(dsts, 0, dsts.length);
  }

  /** {@code n} as read returns it; at the end of the stream, the child's exit status first. */
  private int ended(int n) throws IOException {
    if (n < 0) {
      if (shutdown) {
        throw new ChannelShutdownException(peerDescription());
      }
      if (!exitChecked) {
        exitChecked = true;
        IOException exit = awaitExit(EXIT_WAIT_MS);
        if (exit != null) {
          throw exit;
        }
      }
      return -1;
    }
    return n;
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    if (shutdown) {
      throw new ChannelShutdownException(peerDescription());
    }
    if (!writing) {
      throw new NonWritableChannelException();
    }
    int total = 0;
    try {
      if (pipe != null) {
        while (src.hasRemaining()) {
          total += pipe.write(src);
        }
        return total;
      }
      while (src.hasRemaining()) {
        int n = Math.min(copy.length, src.remaining());
        src.get(copy, 0, n);
        out.write(copy, 0, n);
        total += n;
      }
      out.flush();
    } catch (IOException e) {
      throw failure(e);
    }
    return total;
  }

  /** One {@code writev} per call on the pipe (large writes, no copy); a write per buffer otherwise. */
  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    if (pipe != null) {
      if (shutdown) {
        throw new ChannelShutdownException(peerDescription());
      }
      if (!writing) {
        throw new NonWritableChannelException();
      }
      try {
        return pipe.write(srcs, offset, length);
      } catch (IOException e) {
        throw failure(e);
      }
    }
    long total = 0;
    for (int i = offset; i < offset + length; i++) {
      total += write(srcs[i]);
    }
    return total;
  }

  @Override
  public void shutdown() {
    if (shutdown) {
      return;
    }
    shutdown = true;
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public boolean isOpen() {
    return !closed;
  }

  /**
   * Outgoing: closes the child's stdin (its end of stream) and waits for it to exit; a non-zero
   * exit is reported. Incoming: closes its stdout and reaps it (killing it if it does not exit).
   */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    IOException failure = null;
    try {
      if (pipe != null) {
        pipe.close();
      } else if (writing) {
        out.close();
      } else {
        in.close();
      }
    } catch (IOException e) {
      failure = e;
    }
    if (shutdown) {
      return;
    }
    IOException exit = awaitExit(writing ? EXIT_WAIT_MS : 500);
    if (process.isAlive()) {
      process.destroyForcibly();
    }
    if (writing && exit != null && !exitChecked) {
      exitChecked = true;
      if (failure != null) {
        exit.addSuppressed(failure);
      }
      throw exit;
    }
  }
}
