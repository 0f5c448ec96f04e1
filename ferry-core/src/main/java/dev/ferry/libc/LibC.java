package dev.ferry.libc;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Ferry's one binding of libc: the functions the transports ({@code fd:}, unix sockets, exec) and
 * guest RAM ({@code mmap}, {@code munmap}, {@code madvise}) need, looked up once (Lucene's
 * PosixNativeAccess pattern). Calls that can fail capture {@code errno} through {@link
 * Linker.Option#captureCallState}; {@link #check} turns a -1 into an {@link IOException} naming the
 * call and the errno.
 *
 * <p>Linux x86_64/aarch64 constants; Ferry runs on Linux only.
 */
@SuppressWarnings("restricted") // FFM downcalls; the module runs with --enable-native-access
public final class LibC {
  public static final int EINTR = 4;
  public static final int EAGAIN = 11;
  public static final int EPIPE = 32;
  public static final int ENOTSOCK = 88;
  public static final int EBADF = 9;

  public static final int SHUT_RD = 0;
  public static final int SHUT_WR = 1;
  public static final int SHUT_RDWR = 2;
  public static final int SOL_SOCKET = 1;
  public static final int SO_TYPE = 3;
  public static final int SOCK_STREAM = 1;
  public static final int AF_UNIX = 1;
  public static final int SOCK_CLOEXEC = 0x80000;
  public static final int F_GETFD = 1;
  public static final int F_SETFD = 2;
  public static final int F_GETFL = 3;
  public static final int F_SETFL = 4;
  public static final int FD_CLOEXEC = 1;
  public static final int O_NONBLOCK = 0x800;
  public static final int O_ACCMODE = 0x3;
  public static final int O_WRONLY = 0x1;
  public static final int O_CREAT = 0x40;
  public static final int O_TRUNC = 0x200;
  public static final int O_CLOEXEC = 0x80000;
  public static final int F_DUPFD_CLOEXEC = 1030;
  public static final int ECHILD = 10;
  public static final short POLLIN = 0x1;
  public static final short POLLOUT = 0x4;
  public static final int WNOHANG = 1;
  public static final int SIGKILL = 9;
  public static final int SCM_RIGHTS = 1;
  public static final int MSG_CMSG_CLOEXEC = 0x40000000;
  public static final int MSG_CTRUNC = 0x8;
  public static final int MSG_NOSIGNAL = 0x4000;
  public static final int EINVAL = 22;
  public static final int ECONNABORTED = 103;

  /** {@code struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }} */
  public static final long SOCKADDR_UN_BYTES = 110;
  public static final int SUN_PATH_MAX = 107;

  /**
   * {@code struct msghdr} (64-bit Linux): name, namelen (+pad), iov, iovlen, control, controllen,
   * flags (+pad).
   */
  public static final StructLayout MSGHDR =
      MemoryLayout.structLayout(
          ADDRESS.withName("name"),
          JAVA_INT.withName("namelen"),
          MemoryLayout.paddingLayout(4),
          ADDRESS.withName("iov"),
          JAVA_LONG.withName("iovlen"),
          ADDRESS.withName("control"),
          JAVA_LONG.withName("controllen"),
          JAVA_INT.withName("flags"),
          MemoryLayout.paddingLayout(4));

  public static final long MSGHDR_IOV = 16;
  public static final long MSGHDR_IOVLEN = 24;
  public static final long MSGHDR_CONTROL = 32;
  public static final long MSGHDR_CONTROLLEN = 40;
  public static final long MSGHDR_FLAGS = 48;

  /** {@code struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }}, then the data. */
  public static final long CMSG_HEADER_BYTES = 16;

  /** {@code CMSG_SPACE(dataBytes)}: the header plus the data rounded up to 8 bytes. */
  public static long cmsgSpace(long dataBytes) {
    return CMSG_HEADER_BYTES + ((dataBytes + 7) & ~7L);
  }

  /** {@code struct pollfd { int fd; short events; short revents; }} */
  public static final StructLayout POLLFD =
      MemoryLayout.structLayout(
          JAVA_INT.withName("fd"), JAVA_SHORT.withName("events"), JAVA_SHORT.withName("revents"));

  /** {@code struct iovec { void *iov_base; size_t iov_len; }} */
  public static final StructLayout IOVEC =
      MemoryLayout.structLayout(ADDRESS.withName("base"), JAVA_LONG.withName("len"));

  private static final Linker LINKER = Linker.nativeLinker();
  private static final SymbolLookup LIBC = LINKER.defaultLookup();
  private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
  private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO_VH =
      CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

  // The bindings, in holder classes by purpose: a class initializer links its group on first use
  // only. Linking a downcall spins method handles and hidden classes (milliseconds each in a fresh
  // JVM, and JDK 25's AOT cache does not keep them), so a command that only maps RAM (ferry
  // analyze) should not pay for posix_spawn, sockets and the rest.

  /** Bindings of descriptor calls: read, write, close, fcntl, poll and the like. */
  private static final class Io {
    static final MethodHandle READ =
        downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle WRITE =
        downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    static final MethodHandle WRITEV =
        downcall("writev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle CLOSE =
        downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    static final MethodHandle SHUTDOWN =
        downcall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle GETSOCKOPT =
        downcall(
            "getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    static final MethodHandle SOCKETPAIR =
        downcall(
            "socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    static final MethodHandle PIPE2 =
        downcall("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle FCNTL =
        downcall(
            "fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    static final MethodHandle OPEN =
        downcall(
            "open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    static final MethodHandle POLL =
        downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  }

  /** Bindings of child processes: posix_spawn and its file actions, waitpid, kill. */
  private static final class Spawn {
    static final MethodHandle POSIX_SPAWNP =
        LINKER.downcallHandle(
            LIBC.find("posix_spawnp").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    static final MethodHandle FA_INIT =
        LINKER.downcallHandle(
            LIBC.find("posix_spawn_file_actions_init").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    static final MethodHandle FA_DESTROY =
        LINKER.downcallHandle(
            LIBC.find("posix_spawn_file_actions_destroy").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    static final MethodHandle FA_ADDDUP2 =
        LINKER.downcallHandle(
            LIBC.find("posix_spawn_file_actions_adddup2").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    static final MethodHandle FA_ADDOPEN =
        LINKER.downcallHandle(
            LIBC.find("posix_spawn_file_actions_addopen").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    /** glibc 2.34+; absent (null) on older C libraries. */
    static final MethodHandle FA_ADDCLOSEFROM =
        LIBC.find("posix_spawn_file_actions_addclosefrom_np")
            .map(
                addr ->
                    LINKER.downcallHandle(addr, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)))
            .orElse(null);
    static final MethodHandle WAITPID =
        downcall("waitpid", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle KILL =
        downcall("kill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  }

  /** Bindings of unix sockets with descriptor passing. */
  private static final class Sockets {
    static final MethodHandle SOCKET =
        downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle BIND =
        downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle LISTEN =
        downcall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    static final MethodHandle ACCEPT4 =
        downcall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    static final MethodHandle CONNECT =
        downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle RECVMSG =
        downcall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    static final MethodHandle SENDMSG =
        downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
  }

  /** Bindings of guest RAM: mmap, munmap, madvise. */
  private static final class Memory {
    static final MethodHandle MMAP =
        downcall("mmap", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    static final MethodHandle MUNMAP =
        downcall("munmap", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    static final MethodHandle MADVISE =
        downcall("madvise", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
  }

  /** glibc's {@code posix_spawn_file_actions_t} is 80 bytes on 64-bit; room to spare. */
  public static final long FILE_ACTIONS_SIZE = 256;

  private static final ThreadLocal<MemorySegment> CAPTURE_SEGMENT =
      ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

  private LibC() {}

  private static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... more) {
    Linker.Option[] opts = new Linker.Option[more.length + 1];
    opts[0] = ERRNO;
    System.arraycopy(more, 0, opts, 1, more.length);
    return LINKER.downcallHandle(
        LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name)),
        fd,
        opts);
  }

  /**
   * Links the memory calls ({@code mmap}, {@code munmap}, {@code madvise}) now, so that a caller can
   * learn up front whether they work.
   *
   * @throws LinkageError when they cannot be linked (no libc, native access denied)
   */
  public static void linkMemoryCalls() {
    Memory.MMAP.type();
  }

  /** The errno captured by the last call of this thread. */
  public static int errno() {
    return (int) ERRNO_VH.get(CAPTURE_SEGMENT.get(), 0L);
  }

  public static String strerror(int errno) {
    return switch (errno) {
      case EINTR -> "Interrupted system call (EINTR)";
      case EAGAIN -> "Resource temporarily unavailable (EAGAIN)";
      case EPIPE -> "Broken pipe (EPIPE)";
      case EBADF -> "Bad file descriptor (EBADF)";
      case ENOTSOCK -> "Not a socket (ENOTSOCK)";
      case 2 -> "No such file or directory (ENOENT)";
      case 13 -> "Permission denied (EACCES)";
      case 24 -> "Too many open files (EMFILE)";
      case 98 -> "Address already in use (EADDRINUSE)";
      case 111 -> "Connection refused (ECONNREFUSED)";
      case 104 -> "Connection reset by peer (ECONNRESET)";
      case 107 -> "Transport endpoint is not connected (ENOTCONN)";
      default -> "errno " + errno;
    };
  }

  public static IOException error(String call, int errno) {
    return new IOException(call + " failed: " + strerror(errno));
  }

  private static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) {
      throw r;
    }
    if (t instanceof Error e) {
      throw e;
    }
    throw new AssertionError(t);
  }

  public static long read(int fd, MemorySegment buf, long len) {
    try {
      return (long) Io.READ.invokeExact(CAPTURE_SEGMENT.get(), fd, buf, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static long write(int fd, MemorySegment buf, long len) {
    try {
      return (long) Io.WRITE.invokeExact(CAPTURE_SEGMENT.get(), fd, buf, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static long writev(int fd, MemorySegment iov, int count) {
    try {
      return (long) Io.WRITEV.invokeExact(CAPTURE_SEGMENT.get(), fd, iov, count);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int close(int fd) {
    try {
      return (int) Io.CLOSE.invokeExact(CAPTURE_SEGMENT.get(), fd);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int shutdown(int fd, int how) {
    try {
      return (int) Io.SHUTDOWN.invokeExact(CAPTURE_SEGMENT.get(), fd, how);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code getsockopt(fd, SOL_SOCKET, SO_TYPE)}: the socket type, or -1 with errno (ENOTSOCK). */
  public static int socketType(int fd) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment val = a.allocate(JAVA_INT);
      MemorySegment len = a.allocate(JAVA_INT);
      len.set(JAVA_INT, 0, 4);
      int r =
          (int) Io.GETSOCKOPT.invokeExact(CAPTURE_SEGMENT.get(), fd, SOL_SOCKET, SO_TYPE, val, len);
      return r < 0 ? -1 : val.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int socketpair(int domain, int type, int protocol, MemorySegment fds) {
    try {
      return (int) Io.SOCKETPAIR.invokeExact(CAPTURE_SEGMENT.get(), domain, type, protocol, fds);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int pipe2(MemorySegment fds, int flags) {
    try {
      return (int) Io.PIPE2.invokeExact(CAPTURE_SEGMENT.get(), fds, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int fcntl(int fd, int cmd, int arg) {
    try {
      return (int) Io.FCNTL.invokeExact(CAPTURE_SEGMENT.get(), fd, cmd, arg);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int open(MemorySegment path, int flags) {
    try {
      return (int) Io.OPEN.invokeExact(CAPTURE_SEGMENT.get(), path, flags, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int poll(MemorySegment fds, long nfds, int timeoutMs) {
    try {
      return (int) Io.POLL.invokeExact(CAPTURE_SEGMENT.get(), fds, nfds, timeoutMs);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Returns 0 or an error number (posix_spawn does not use errno). */
  public static int posixSpawnp(
      MemorySegment pid,
      MemorySegment file,
      MemorySegment actions,
      MemorySegment argv,
      MemorySegment envp) {
    try {
      return (int) Spawn.POSIX_SPAWNP.invokeExact(pid, file, actions, MemorySegment.NULL, argv, envp);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int fileActionsInit(MemorySegment fa) {
    try {
      return (int) Spawn.FA_INIT.invokeExact(fa);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int fileActionsDestroy(MemorySegment fa) {
    try {
      return (int) Spawn.FA_DESTROY.invokeExact(fa);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int fileActionsAddDup2(MemorySegment fa, int fd, int newFd) {
    try {
      return (int) Spawn.FA_ADDDUP2.invokeExact(fa, fd, newFd);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int fileActionsAddOpen(MemorySegment fa, int fd, MemorySegment path, int flags, int mode) {
    try {
      return (int) Spawn.FA_ADDOPEN.invokeExact(fa, fd, path, flags, mode);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Returns 0, an error number, or -1 when this C library lacks the call. */
  public static int fileActionsAddCloseFrom(MemorySegment fa, int from) {
    if (Spawn.FA_ADDCLOSEFROM == null) {
      return -1;
    }
    try {
      return (int) Spawn.FA_ADDCLOSEFROM.invokeExact(fa, from);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int waitpid(int pid, MemorySegment status, int options) {
    try {
      return (int) Spawn.WAITPID.invokeExact(CAPTURE_SEGMENT.get(), pid, status, options);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int kill(int pid, int sig) {
    try {
      return (int) Spawn.KILL.invokeExact(CAPTURE_SEGMENT.get(), pid, sig);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int socket(int domain, int type, int protocol) {
    try {
      return (int) Sockets.SOCKET.invokeExact(CAPTURE_SEGMENT.get(), domain, type, protocol);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int bind(int fd, MemorySegment addr, int len) {
    try {
      return (int) Sockets.BIND.invokeExact(CAPTURE_SEGMENT.get(), fd, addr, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int listen(int fd, int backlog) {
    try {
      return (int) Sockets.LISTEN.invokeExact(CAPTURE_SEGMENT.get(), fd, backlog);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int accept4(int fd, int flags) {
    try {
      return (int) Sockets.ACCEPT4.invokeExact(CAPTURE_SEGMENT.get(), fd, MemorySegment.NULL, MemorySegment.NULL, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int connect(int fd, MemorySegment addr, int len) {
    try {
      return (int) Sockets.CONNECT.invokeExact(CAPTURE_SEGMENT.get(), fd, addr, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static long recvmsg(int fd, MemorySegment msg, int flags) {
    try {
      return (long) Sockets.RECVMSG.invokeExact(CAPTURE_SEGMENT.get(), fd, msg, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static long sendmsg(int fd, MemorySegment msg, int flags) {
    try {
      return (long) Sockets.SENDMSG.invokeExact(CAPTURE_SEGMENT.get(), fd, msg, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** A {@code sockaddr_un} for {@code path} (at most {@value #SUN_PATH_MAX} bytes). */
  public static MemorySegment sockaddrUn(Arena a, String path) throws IOException {
    byte[] p = path.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    if (p.length > SUN_PATH_MAX) {
      throw new IOException("unix socket path too long (" + p.length + " bytes, at most " + SUN_PATH_MAX + "): " + path);
    }
    MemorySegment sa = a.allocate(SOCKADDR_UN_BYTES, 8);
    sa.set(JAVA_SHORT, 0, (short) AF_UNIX);
    MemorySegment.copy(p, 0, sa, java.lang.foreign.ValueLayout.JAVA_BYTE, 2, p.length);
    return sa;
  }

  // ---------------------------------------------------------------- memory mappings

  public static final int PROT_READ = 0x1;
  public static final int PROT_WRITE = 0x2;
  public static final int MAP_PRIVATE = 0x02;
  public static final int MAP_ANONYMOUS = 0x20;
  public static final int MAP_NORESERVE = 0x4000;
  /** What {@link #mmap} returns on failure. */
  public static final long MAP_FAILED = -1L;
  public static final int MADV_SEQUENTIAL = 2;
  public static final int MADV_WILLNEED = 3;
  public static final int MADV_DONTNEED = 4;
  public static final int MADV_HUGEPAGE = 14;
  public static final int MADV_POPULATE_WRITE = 23;

  /** {@code mmap}; {@link #MAP_FAILED} and {@link #errno()} on failure. */
  public static long mmap(long addr, long length, int prot, int flags, int fd, long offset) {
    try {
      return (long) Memory.MMAP.invokeExact(CAPTURE_SEGMENT.get(), addr, length, prot, flags, fd, offset);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code munmap}; -1 and {@link #errno()} on failure. */
  public static int munmap(long addr, long length) {
    try {
      return (int) Memory.MUNMAP.invokeExact(CAPTURE_SEGMENT.get(), addr, length);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code madvise}; -1 and {@link #errno()} on failure. */
  public static int madvise(long addr, long length, int advice) {
    try {
      return (int) Memory.MADVISE.invokeExact(CAPTURE_SEGMENT.get(), addr, length, advice);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }
}
