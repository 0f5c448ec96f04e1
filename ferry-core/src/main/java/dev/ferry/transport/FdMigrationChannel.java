package dev.ferry.transport;

import dev.ferry.libc.LibC;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code fd:N}: a descriptor the process inherited, driven through libc {@code read}/{@code
 * writev}/{@code shutdown}/{@code close} (Java has no public way to wrap a raw fd).
 *
 * <p>What the descriptor is decides how it is driven:
 *
 * <ul>
 *   <li><b>Stream socket</b> ({@code getsockopt(SO_TYPE)}): blocking I/O; carries a return path;
 *       {@link #shutdown()} is {@code shutdown(SHUT_RDWR)}, which wakes a blocked read or write.
 *   <li><b>Regular file</b>: blocking I/O, which never waits for a peer.
 *   <li><b>Anything else</b> (a pipe, a FIFO): a blocking write of more than a page into a pipe
 *       waits until all of it is taken, and nothing but a signal gets a thread out of it. So the
 *       descriptor is opened again through {@code /proc/self/fd/N}, which gives a new open file
 *       description with its own non-blocking flag (the parent's copy stays as it was); reads and
 *       writes that would block poll it together with a private wake-up pipe, which {@link
 *       #shutdown()} writes to.
 * </ul>
 *
 * The descriptor is made close-on-exec so that children this process starts do not keep it open.
 * Heap buffers go through a native scratch buffer per direction; direct buffers are used in place.
 */
final class FdMigrationChannel implements MigrationChannel {
  private static final int SCRATCH_BYTES = 256 * 1024;
  private static final int MAX_IOV = 64;

  private enum Kind {
    SOCKET,
    FILE,
    POLLED
  }

  private final int fd;
  /** The descriptor I/O goes through: {@code fd}, or the non-blocking reopen for POLLED. */
  private final int ioFd;
  private final Kind kind;
  private final String peer;
  private final Arena arena = Arena.ofShared();
  private final Object readLock = new Object();
  private final Object writeLock = new Object();
  private final MemorySegment readScratch;
  private final MemorySegment writeScratch;
  private final MemorySegment iov;
  private final MemorySegment readPoll;
  private final MemorySegment writePoll;
  /** POLLED only: the wake-up pipe, [read end, write end]; -1 otherwise. */
  private final int wakeRead;
  private final int wakeWrite;
  private final Object stateLock = new Object();
  private volatile boolean shutdown;
  private boolean fdClosed;
  private final AtomicBoolean closed = new AtomicBoolean();

  /** {@code name}: how errors name the channel, e.g. {@code fd:migfd} for a descriptor from getfd. */
  FdMigrationChannel(int fd, String name) throws IOException {
    this.fd = fd;
    int fl = LibC.fcntl(fd, LibC.F_GETFL, 0);
    if (fl < 0) {
      throw new IOException(name + ": not an open descriptor: " + LibC.strerror(LibC.errno()));
    }
    int fdFlags = LibC.fcntl(fd, LibC.F_GETFD, 0);
    if (fdFlags >= 0) {
      LibC.fcntl(fd, LibC.F_SETFD, fdFlags | LibC.FD_CLOEXEC);
    }
    String what = describeTarget(fd);
    if (LibC.socketType(fd) == LibC.SOCK_STREAM) {
      kind = Kind.SOCKET;
    } else if (what.startsWith("/") && Files.isRegularFile(Path.of(what))) {
      kind = Kind.FILE;
    } else {
      kind = Kind.POLLED;
    }
    this.peer = name;
    int io = fd;
    int wr = -1;
    int ww = -1;
    try {
      if (kind == Kind.POLLED) {
        try (Arena a = Arena.ofConfined()) {
          io =
              LibC.open(
                  a.allocateFrom("/proc/self/fd/" + fd),
                  (fl & LibC.O_ACCMODE) | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
          if (io < 0) {
            throw new IOException(
                peer + ": cannot reopen " + what + " non-blocking: " + LibC.strerror(LibC.errno()));
          }
          MemorySegment p = a.allocate(ValueLayout.JAVA_INT, 2);
          if (LibC.pipe2(p, LibC.O_CLOEXEC) < 0) {
            int e = LibC.errno();
            LibC.close(io);
            throw LibC.error("pipe2", e);
          }
          wr = p.getAtIndex(ValueLayout.JAVA_INT, 0);
          ww = p.getAtIndex(ValueLayout.JAVA_INT, 1);
        }
      } else if ((fl & LibC.O_NONBLOCK) != 0
          && LibC.fcntl(fd, LibC.F_SETFL, fl & ~LibC.O_NONBLOCK) < 0) {
        throw LibC.error(peer + ": fcntl(F_SETFL)", LibC.errno());
      }
    } catch (IOException | RuntimeException e) {
      arena.close();
      throw e;
    }
    this.ioFd = io;
    this.wakeRead = wr;
    this.wakeWrite = ww;
    this.readScratch = arena.allocate(SCRATCH_BYTES, 4096);
    this.writeScratch = arena.allocate(SCRATCH_BYTES, 4096);
    this.iov = arena.allocate(LibC.IOVEC, MAX_IOV);
    this.readPoll = arena.allocate(LibC.POLLFD, 2);
    this.writePoll = arena.allocate(LibC.POLLFD, 2);
  }

  /** What /proc says the descriptor is: a path, {@code pipe:[..]}, {@code socket:[..]}, ... */
  private static String describeTarget(int fd) {
    try {
      return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
    } catch (IOException | UnsupportedOperationException e) {
      return "?";
    }
  }

  @Override
  public boolean supportsReturnPath() {
    return kind == Kind.SOCKET;
  }

  @Override
  public String peerDescription() {
    return peer;
  }

  private void checkUsable() throws IOException {
    if (closed.get()) {
      throw new ClosedChannelException();
    }
    if (shutdown) {
      throw new ChannelShutdownException(peer);
    }
  }

  /** POLLED: waits until {@code ioFd} is ready for {@code events} or the channel is shut down. */
  private void awaitReady(MemorySegment pfd, short events) throws IOException {
    pfd.set(ValueLayout.JAVA_INT, 0, ioFd);
    pfd.set(ValueLayout.JAVA_SHORT, 4, events);
    pfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
    pfd.set(ValueLayout.JAVA_INT, 8, wakeRead);
    pfd.set(ValueLayout.JAVA_SHORT, 12, LibC.POLLIN);
    pfd.set(ValueLayout.JAVA_SHORT, 14, (short) 0);
    while (true) {
      int r = LibC.poll(pfd, 2, -1);
      if (r < 0) {
        int e = LibC.errno();
        if (e == LibC.EINTR) {
          continue;
        }
        throw LibC.error("poll(" + peer + ")", e);
      }
      if (shutdown || pfd.get(ValueLayout.JAVA_SHORT, 14) != 0) {
        throw new ChannelShutdownException(peer);
      }
      if (pfd.get(ValueLayout.JAVA_SHORT, 6) != 0) {
        return; // ready, hung up or in error: the read/write itself tells which
      }
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    synchronized (readLock) {
      checkUsable();
      if (!dst.hasRemaining()) {
        return 0;
      }
      boolean direct = dst.isDirect();
      MemorySegment target =
          direct
              ? MemorySegment.ofBuffer(dst)
              : readScratch.asSlice(0, Math.min(dst.remaining(), SCRATCH_BYTES));
      long n;
      while (true) {
        n = LibC.read(ioFd, target, target.byteSize());
        if (n >= 0) {
          break;
        }
        int e = LibC.errno();
        if (shutdown) {
          throw new ChannelShutdownException(peer);
        }
        if (e == LibC.EAGAIN && kind == Kind.POLLED) {
          awaitReady(readPoll, LibC.POLLIN);
        } else if (e != LibC.EINTR) {
          throw LibC.error("read(" + peer + ")", e);
        }
      }
      if (n == 0) {
        if (shutdown) {
          throw new ChannelShutdownException(peer);
        }
        return -1;
      }
      if (direct) {
        dst.position(dst.position() + (int) n);
      } else {
        dst.put(readScratch.asSlice(0, n).asByteBuffer());
      }
      return (int) n;
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return (int) write(new ByteBuffer[] {src}, 0, 1);
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    Objects.checkFromIndexSize(offset, length, srcs.length);
    synchronized (writeLock) {
      checkUsable();
      // Gather up to MAX_IOV pieces; heap pieces are staged in the scratch buffer.
      int count = 0;
      long scratchUsed = 0;
      for (int i = offset; i < offset + length && count < MAX_IOV; i++) {
        ByteBuffer b = srcs[i];
        int rem = b.remaining();
        if (rem == 0) {
          continue;
        }
        MemorySegment seg;
        if (b.isDirect()) {
          seg = MemorySegment.ofBuffer(b);
        } else {
          long room = SCRATCH_BYTES - scratchUsed;
          if (room == 0) {
            break;
          }
          int k = (int) Math.min(rem, room);
          seg = writeScratch.asSlice(scratchUsed, k);
          MemorySegment.copy(MemorySegment.ofBuffer(b), 0, seg, 0, k);
          scratchUsed += k;
        }
        iov.setAtIndex(ValueLayout.ADDRESS, 2L * count, seg);
        iov.setAtIndex(ValueLayout.JAVA_LONG, 2L * count + 1, seg.byteSize());
        count++;
      }
      if (count == 0) {
        return 0;
      }
      long n;
      while (true) {
        n = LibC.writev(ioFd, iov, count);
        if (n >= 0) {
          break;
        }
        int e = LibC.errno();
        if (shutdown) {
          throw new ChannelShutdownException(peer);
        }
        if (e == LibC.EAGAIN && kind == Kind.POLLED) {
          awaitReady(writePoll, LibC.POLLOUT);
        } else if (e != LibC.EINTR) {
          throw LibC.error("write(" + peer + ")", e);
        }
      }
      long left = n;
      for (int i = offset; i < offset + length && left > 0; i++) {
        ByteBuffer b = srcs[i];
        int k = (int) Math.min(left, b.remaining());
        b.position(b.position() + k);
        left -= k;
      }
      return n;
    }
  }

  @Override
  public void shutdown() {
    synchronized (stateLock) {
      if (shutdown) {
        return;
      }
      shutdown = true;
      if (fdClosed) {
        return; // the numbers may already belong to someone else
      }
      switch (kind) {
        case SOCKET -> LibC.shutdown(fd, LibC.SHUT_RDWR);
        case POLLED -> {
          try (Arena a = Arena.ofConfined()) {
            LibC.write(wakeWrite, a.allocate(1), 1);
          }
        }
        case FILE -> {
          // file I/O never waits for a peer; the flag stops the next call
        }
      }
    }
  }

  @Override
  public boolean isShutdown() {
    return shutdown;
  }

  @Override
  public boolean isOpen() {
    return !closed.get();
  }

  @Override
  public void close() throws IOException {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    shutdown();
    // Wait for a reader or writer still inside a call before releasing what they use.
    synchronized (readLock) {
      synchronized (writeLock) {
        int r;
        int e;
        synchronized (stateLock) {
          fdClosed = true;
          r = LibC.close(fd);
          e = r < 0 ? LibC.errno() : 0;
          if (kind == Kind.POLLED) {
            LibC.close(ioFd);
            LibC.close(wakeRead);
            LibC.close(wakeWrite);
          }
        }
        arena.close();
        if (r < 0 && e != LibC.EINTR) {
          throw LibC.error("close(" + peer + ")", e);
        }
      }
    }
  }
}
