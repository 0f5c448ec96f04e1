package dev.ferry.transport;

import dev.ferry.libc.LibC;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A connected Unix stream socket driven through libc, which, unlike the JDK's channels, receives
 * descriptors passed with {@code SCM_RIGHTS} ancillary data: what QMP's {@code getfd} needs (QEMU's
 * monitor takes them the same way). Every {@link #read} is a {@code recvmsg}; descriptors that come
 * with the bytes are kept, close-on-exec, until {@link #takeReceivedFd()} claims them or the socket
 * closes (which closes the unclaimed ones). {@link #send(ByteBuffer, int)} is the client side.
 *
 * <p>Blocking; call from platform threads (a native call pins a virtual thread's carrier). {@link
 * #shutdown()} wakes a thread blocked in {@link #read}; {@link #close()} waits for it to leave
 * before the descriptor number is released.
 */
public final class UnixFdSocket implements ByteChannel {
  /** Descriptors a peer may leave unclaimed before further ones are closed on arrival. */
  static final int MAX_PENDING_FDS = 16;

  private static final int SCRATCH_BYTES = 64 * 1024;
  private static final int MAX_FDS_PER_MESSAGE = 8;

  private final int fd;
  private final String name;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment readScratch;
  private final MemorySegment writeScratch;
  private final MemorySegment readMsg;
  private final MemorySegment readIov;
  private final MemorySegment readControl;
  private final Object readLock = new Object();
  private final Object writeLock = new Object();
  private final ArrayDeque<Integer> received = new ArrayDeque<>();
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile boolean shutdown;

  private UnixFdSocket(int fd, String name) {
    this.fd = fd;
    this.name = name;
    this.readScratch = arena.allocate(SCRATCH_BYTES, 4096);
    this.writeScratch = arena.allocate(SCRATCH_BYTES, 4096);
    this.readMsg = arena.allocate(LibC.MSGHDR);
    this.readIov = arena.allocate(LibC.IOVEC);
    this.readControl = arena.allocate(LibC.cmsgSpace(4L * MAX_FDS_PER_MESSAGE), 8);
  }

  /** Connects to the socket at {@code path} (a client of a monitor, e.g. in tests). */
  public static UnixFdSocket connect(Path path) throws IOException {
    int s = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
    if (s < 0) {
      throw LibC.error("socket(AF_UNIX)", LibC.errno());
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment sa = LibC.sockaddrUn(a, path.toString());
      if (LibC.connect(s, sa, (int) LibC.SOCKADDR_UN_BYTES) < 0) {
        int e = LibC.errno();
        LibC.close(s);
        throw new IOException("unix:" + path + ": cannot connect: " + LibC.strerror(e));
      }
    } catch (IOException | RuntimeException e) {
      LibC.close(s);
      throw e;
    }
    return new UnixFdSocket(s, "unix:" + path);
  }

  /**
   * Listens on {@code path} (which must not exist). The caller removes the socket file when done.
   */
  public static Server listen(Path path) throws IOException {
    int s = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
    if (s < 0) {
      throw LibC.error("socket(AF_UNIX)", LibC.errno());
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment sa = LibC.sockaddrUn(a, path.toString());
      if (LibC.bind(s, sa, (int) LibC.SOCKADDR_UN_BYTES) < 0) {
        throw new IOException("unix:" + path + ": cannot listen: " + LibC.strerror(LibC.errno()));
      }
      if (LibC.listen(s, 16) < 0) {
        throw new IOException("unix:" + path + ": cannot listen: " + LibC.strerror(LibC.errno()));
      }
    } catch (IOException | RuntimeException e) {
      LibC.close(s);
      throw e;
    }
    return new Server(s, "unix:" + path);
  }

  /** A listening Unix socket whose connections are {@link UnixFdSocket}s. */
  public static final class Server implements Closeable {
    private final int fd;
    private final String name;
    private final Object stateLock = new Object();
    private volatile boolean closed;
    private int inAccept;

    private Server(int fd, String name) {
      this.fd = fd;
      this.name = name;
    }

    /** Waits for the next connection; throws {@link ClosedChannelException} once closed. */
    public UnixFdSocket accept() throws IOException {
      synchronized (stateLock) {
        if (closed) {
          throw new ClosedChannelException();
        }
        inAccept++;
      }
      try {
        while (true) {
          int c = LibC.accept4(fd, LibC.SOCK_CLOEXEC);
          if (c >= 0) {
            if (closed) {
              LibC.close(c);
              throw new ClosedChannelException();
            }
            return new UnixFdSocket(c, name + " (client)");
          }
          int e = LibC.errno();
          if (closed) {
            throw new ClosedChannelException();
          }
          if (e != LibC.EINTR && e != LibC.ECONNABORTED) {
            throw LibC.error("accept(" + name + ")", e);
          }
        }
      } finally {
        synchronized (stateLock) {
          inAccept--;
          stateLock.notifyAll();
        }
      }
    }

    /** Stops listening; a thread blocked in {@link #accept} returns with ClosedChannelException. */
    @Override
    public void close() {
      synchronized (stateLock) {
        if (closed) {
          return;
        }
        closed = true;
        LibC.shutdown(fd, LibC.SHUT_RDWR); // wakes accept() (EINVAL)
        while (inAccept > 0) {
          try {
            stateLock.wait(100);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            break;
          }
        }
        LibC.close(fd);
      }
    }
  }

  public String name() {
    return name;
  }

  /**
   * The oldest descriptor received and not yet claimed (the caller owns it then), or empty: QMP
   * {@code getfd} claims the one sent with its own message.
   */
  public OptionalInt takeReceivedFd() {
    synchronized (received) {
      Integer f = received.pollFirst();
      return f == null ? OptionalInt.empty() : OptionalInt.of(f);
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    synchronized (readLock) {
      check();
      int want = Math.min(dst.remaining(), SCRATCH_BYTES);
      if (want == 0) {
        return 0;
      }
      readIov.set(ValueLayout.ADDRESS, 0, readScratch);
      readIov.set(ValueLayout.JAVA_LONG, 8, want);
      readMsg.fill((byte) 0);
      readMsg.set(ValueLayout.ADDRESS, LibC.MSGHDR_IOV, readIov);
      readMsg.set(ValueLayout.JAVA_LONG, LibC.MSGHDR_IOVLEN, 1);
      readMsg.set(ValueLayout.ADDRESS, LibC.MSGHDR_CONTROL, readControl);
      readMsg.set(ValueLayout.JAVA_LONG, LibC.MSGHDR_CONTROLLEN, readControl.byteSize());
      long n;
      while (true) {
        n = LibC.recvmsg(fd, readMsg, LibC.MSG_CMSG_CLOEXEC);
        if (n >= 0) {
          break;
        }
        int e = LibC.errno();
        if (shutdown) {
          throw new ChannelShutdownException(name);
        }
        if (e != LibC.EINTR) {
          throw LibC.error("recvmsg(" + name + ")", e);
        }
      }
      collectFds();
      if (n == 0) {
        return -1;
      }
      dst.put(readScratch.asSlice(0, n).asByteBuffer());
      return (int) n;
    }
  }

  /** Keeps the SCM_RIGHTS descriptors of the last recvmsg (closing any beyond the cap). */
  private void collectFds() {
    long controlLen = readMsg.get(ValueLayout.JAVA_LONG, LibC.MSGHDR_CONTROLLEN);
    long off = 0;
    while (off + LibC.CMSG_HEADER_BYTES <= controlLen) {
      long len = readControl.get(ValueLayout.JAVA_LONG, off);
      int level = readControl.get(ValueLayout.JAVA_INT, off + 8);
      int type = readControl.get(ValueLayout.JAVA_INT, off + 12);
      if (len < LibC.CMSG_HEADER_BYTES || off + len > controlLen) {
        break;
      }
      if (level == LibC.SOL_SOCKET && type == LibC.SCM_RIGHTS) {
        for (long p = off + LibC.CMSG_HEADER_BYTES; p + 4 <= off + len; p += 4) {
          int f = readControl.get(ValueLayout.JAVA_INT, p);
          synchronized (received) {
            if (received.size() < MAX_PENDING_FDS && !closed.get()) {
              received.addLast(f);
            } else {
              LibC.close(f);
            }
          }
        }
      }
      off += (len + 7) & ~7L;
    }
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    return send(src, -1);
  }

  /**
   * Writes (part of) {@code src}; with {@code passFd >= 0} the descriptor goes along as {@code
   * SCM_RIGHTS} with the first byte (the receiver gets its own copy; the caller keeps this one).
   */
  public int send(ByteBuffer src, int passFd) throws IOException {
    synchronized (writeLock) {
      check();
      int k = Math.min(src.remaining(), SCRATCH_BYTES);
      if (k == 0 && passFd < 0) {
        return 0;
      }
      try (Arena a = Arena.ofConfined()) {
        MemorySegment.copy(MemorySegment.ofBuffer(src), 0, writeScratch, 0, k);
        MemorySegment iov = a.allocate(LibC.IOVEC);
        iov.set(ValueLayout.ADDRESS, 0, writeScratch);
        iov.set(ValueLayout.JAVA_LONG, 8, k);
        MemorySegment msg = a.allocate(LibC.MSGHDR);
        msg.set(ValueLayout.ADDRESS, LibC.MSGHDR_IOV, iov);
        msg.set(ValueLayout.JAVA_LONG, LibC.MSGHDR_IOVLEN, 1);
        if (passFd >= 0) {
          long space = LibC.cmsgSpace(4);
          MemorySegment control = a.allocate(space, 8);
          control.set(ValueLayout.JAVA_LONG, 0, LibC.CMSG_HEADER_BYTES + 4);
          control.set(ValueLayout.JAVA_INT, 8, LibC.SOL_SOCKET);
          control.set(ValueLayout.JAVA_INT, 12, LibC.SCM_RIGHTS);
          control.set(ValueLayout.JAVA_INT, 16, passFd);
          msg.set(ValueLayout.ADDRESS, LibC.MSGHDR_CONTROL, control);
          msg.set(ValueLayout.JAVA_LONG, LibC.MSGHDR_CONTROLLEN, space);
        }
        long n;
        while (true) {
          n = LibC.sendmsg(fd, msg, LibC.MSG_NOSIGNAL);
          if (n >= 0) {
            break;
          }
          int e = LibC.errno();
          if (shutdown) {
            throw new ChannelShutdownException(name);
          }
          if (e != LibC.EINTR) {
            throw LibC.error("sendmsg(" + name + ")", e);
          }
        }
        src.position(src.position() + (int) n);
        return (int) n;
      }
    }
  }

  private void check() throws IOException {
    if (closed.get()) {
      throw new ClosedChannelException();
    }
    if (shutdown) {
      throw new ChannelShutdownException(name);
    }
  }

  /** Shuts both directions down: a blocked read returns, later calls fail. */
  public void shutdown() {
    synchronized (received) {
      if (shutdown || closed.get()) {
        return;
      }
      shutdown = true;
      LibC.shutdown(fd, LibC.SHUT_RDWR);
    }
  }

  @Override
  public boolean isOpen() {
    return !closed.get();
  }

  /** Closes the socket and every received descriptor nobody claimed. */
  @Override
  public void close() {
    shutdown();
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    synchronized (readLock) {
      synchronized (writeLock) {
        synchronized (received) {
          for (int f : received) {
            LibC.close(f);
          }
          received.clear();
          LibC.close(fd);
        }
        arena.close();
      }
    }
  }

  @Override
  public String toString() {
    return "UnixFdSocket[" + name + "]";
  }
}
