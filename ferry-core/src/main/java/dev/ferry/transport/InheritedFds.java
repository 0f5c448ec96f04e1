package dev.ferry.transport;

import dev.ferry.libc.LibC;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Descriptors for the {@code fd:N} transport: making a socket pair and starting a child process
 * that inherits one end as a chosen descriptor number.
 *
 * <h2>Why not ProcessBuilder</h2>
 *
 * The JDK's process launcher closes every descriptor above 2 in the child, whatever its
 * close-on-exec flag, so a descriptor cannot reach a child through {@link ProcessBuilder} (nor
 * through {@code /bin/sh -c 'exec ... 3<&N'}, since N is gone before the shell runs). {@link #spawn}
 * therefore calls {@code posix_spawnp(3)} directly with a {@code dup2} file action per descriptor to
 * pass: {@code dup2} gives the child a copy without close-on-exec, under the number asked for; then
 * every descriptor above the highest one passed is closed in the child ({@code
 * posix_spawn_file_actions_addclosefrom_np}, glibc 2.34+), since not all of a JVM's descriptors are
 * close-on-exec.
 *
 * <h2>Using fd: from Java</h2>
 *
 * <pre>{@code
 * int[] pair = InheritedFds.socketPair();                 // both ends close-on-exec
 * var child = InheritedFds.spawn(
 *     List.of(javaBin, "-cp", cp, "dev.ferry.cli.FerryMain", "run", "--incoming", "fd:3"),
 *     Map.of(3, pair[1]), logFile);                         // child's fd 3 = pair[1]
 * InheritedFds.close(pair[1]);                             // the child holds its copy now
 * try (MigrationChannel out = Transports.connect("fd:" + pair[0])) { ... }  // the source side
 * int status = child.awaitExit(60_000);
 * }</pre>
 *
 * <p>Only descriptors recorded for the purpose are taken by {@code fd:N} (see {@link
 * MigrationFds}): in the child, {@code ferry run --incoming fd:3} records its fd 3, {@code ferry
 * run --fd 3} one to {@code migrate fd:3} to, and an embedding program calls {@link
 * MigrationFds#allowInherited}; the pairs and pipes made here count as this process's own.
 *
 * <p>From a shell or another language the usual ways work: {@code ferry run --incoming fd:3
 * 3<>some-fifo}, Python's {@code subprocess.Popen(..., pass_fds=[fd])} with {@code fd:<fd>}, Go's
 * {@code ExtraFiles} (fd 3 onward), systemd socket activation (fd 3). A socket carries the return
 * path; a pipe does not.
 */
@SuppressWarnings("restricted")
public final class InheritedFds {
  private InheritedFds() {}

  /** A connected pair of Unix stream sockets, both close-on-exec: {@code [a, b]}. */
  public static int[] socketPair() throws IOException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment fds = a.allocate(ValueLayout.JAVA_INT, 2);
      if (LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds) < 0) {
        throw LibC.error("socketpair", LibC.errno());
      }
      return created(fds);
    }
  }

  /** Both ends may be used as {@code fd:N} in this process (see {@link MigrationFds}). */
  private static int[] created(MemorySegment fds) {
    int[] pair = {fds.getAtIndex(ValueLayout.JAVA_INT, 0), fds.getAtIndex(ValueLayout.JAVA_INT, 1)};
    MigrationFds.allowCreated(pair[0]);
    MigrationFds.allowCreated(pair[1]);
    return pair;
  }

  /** A pipe, both ends close-on-exec: {@code [read end, write end]}. */
  public static int[] pipe() throws IOException {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment fds = a.allocate(ValueLayout.JAVA_INT, 2);
      if (LibC.pipe2(fds, LibC.O_CLOEXEC) < 0) {
        throw LibC.error("pipe2", LibC.errno());
      }
      return created(fds);
    }
  }

  /** Closes a raw descriptor (one not wrapped in a channel). */
  public static void close(int fd) throws IOException {
    MigrationFds.forget(fd);
    if (LibC.close(fd) < 0) {
      int e = LibC.errno();
      if (e != LibC.EINTR) {
        throw LibC.error("close(" + fd + ")", e);
      }
    }
  }

  /** Closes a raw descriptor, ignoring errors (one being given up on). */
  public static void closeQuietly(int fd) {
    MigrationFds.forget(fd);
    LibC.close(fd);
  }

  /**
   * Starts {@code argv} (looked up on PATH) with this process's environment; child descriptor k is a
   * copy of parent descriptor {@code fds.get(k)}; stdin is inherited; stdout and stderr go to {@code
   * output} (created or truncated) or, when null, are inherited.
   */
  public static ChildProcess spawn(List<String> argv, Map<Integer, Integer> fds, Path output)
      throws IOException {
    if (argv.isEmpty()) {
      throw new IllegalArgumentException("empty argv");
    }
    List<Integer> temps = new ArrayList<>();
    try (Arena a = Arena.ofConfined()) {
      // Move every source out of the way first, so overlapping maps (3->4, 4->3) and k->k work.
      // Temporaries sit above every target, so no dup2 can land on one not yet used.
      int maxTarget = 2;
      for (int k : fds.keySet()) {
        if (k < 0) {
          throw new IllegalArgumentException("negative child descriptor " + k);
        }
        maxTarget = Math.max(maxTarget, k);
      }
      Map<Integer, Integer> moved = new LinkedHashMap<>();
      for (Map.Entry<Integer, Integer> e : fds.entrySet()) {
        int tmp = LibC.fcntl(e.getValue(), LibC.F_DUPFD_CLOEXEC, Math.max(10, maxTarget + 1));
        if (tmp < 0) {
          throw LibC.error("fcntl(" + e.getValue() + ", F_DUPFD_CLOEXEC)", LibC.errno());
        }
        temps.add(tmp);
        moved.put(e.getKey(), tmp);
      }
      MemorySegment fa = a.allocate(LibC.FILE_ACTIONS_SIZE, 16);
      check("posix_spawn_file_actions_init", LibC.fileActionsInit(fa));
      try {
        if (output != null) {
          MemorySegment path = a.allocateFrom(output.toString());
          check(
              "posix_spawn_file_actions_addopen",
              LibC.fileActionsAddOpen(
                  fa, 1, path, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_TRUNC, 0644));
          check("posix_spawn_file_actions_adddup2", LibC.fileActionsAddDup2(fa, 1, 2));
        }
        for (Map.Entry<Integer, Integer> e : moved.entrySet()) {
          check(
              "posix_spawn_file_actions_adddup2",
              LibC.fileActionsAddDup2(fa, e.getValue(), e.getKey()));
        }
        // Not every descriptor of a JVM is close-on-exec (some jars, what the launcher inherited):
        // close everything above the targets where the C library can (glibc 2.34+).
        int r0 = LibC.fileActionsAddCloseFrom(fa, maxTarget + 1);
        if (r0 > 0) {
          throw LibC.error("posix_spawn_file_actions_addclosefrom_np", r0);
        }
        MemorySegment argvSeg = a.allocate(ValueLayout.ADDRESS, argv.size() + 1L);
        for (int i = 0; i < argv.size(); i++) {
          argvSeg.setAtIndex(ValueLayout.ADDRESS, i, a.allocateFrom(argv.get(i)));
        }
        Map<String, String> env = System.getenv();
        MemorySegment envSeg = a.allocate(ValueLayout.ADDRESS, env.size() + 1L);
        int i = 0;
        for (Map.Entry<String, String> e : env.entrySet()) {
          envSeg.setAtIndex(ValueLayout.ADDRESS, i++, a.allocateFrom(e.getKey() + "=" + e.getValue()));
        }
        MemorySegment pid = a.allocate(ValueLayout.JAVA_INT);
        int r = LibC.posixSpawnp(pid, a.allocateFrom(argv.getFirst()), fa, argvSeg, envSeg);
        if (r != 0) {
          throw new IOException("cannot start " + argv.getFirst() + ": " + LibC.strerror(r));
        }
        return new ChildProcess(pid.get(ValueLayout.JAVA_INT, 0), argv.getFirst());
      } finally {
        LibC.fileActionsDestroy(fa);
      }
    } finally {
      for (int t : temps) {
        LibC.close(t);
      }
    }
  }

  private static void check(String call, int r) throws IOException {
    if (r != 0) {
      throw LibC.error(call, r);
    }
  }

  /** A child started by {@link #spawn}; reap it with {@link #awaitExit} (the JDK does not). */
  public static final class ChildProcess {
    private final int pid;
    private final String program;
    private Integer status;

    ChildProcess(int pid, String program) {
      this.pid = pid;
      this.program = program;
    }

    public long pid() {
      return pid;
    }

    /** The exit code, or -1 while it runs; a child killed by signal s reports 128 + s. */
    public synchronized int exitCodeNow() throws IOException {
      if (status == null) {
        try (Arena a = Arena.ofConfined()) {
          MemorySegment st = a.allocate(ValueLayout.JAVA_INT);
          int r = LibC.waitpid(pid, st, LibC.WNOHANG);
          if (r < 0) {
            throw LibC.error("waitpid(" + pid + ")", LibC.errno());
          }
          if (r == 0) {
            return -1;
          }
          int s = st.get(ValueLayout.JAVA_INT, 0);
          status = (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
        }
      }
      return status;
    }

    /** Waits up to {@code timeoutMs} for the exit; returns the code or throws if still running. */
    public int awaitExit(long timeoutMs) throws IOException, InterruptedException {
      long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
      int code;
      while ((code = exitCodeNow()) < 0) {
        if (System.nanoTime() - deadline > 0) {
          throw new IOException(program + " (pid " + pid + ") still running after " + timeoutMs + " ms");
        }
        Thread.sleep(5);
      }
      return code;
    }

    /** Sends SIGKILL unless it already exited. */
    public synchronized void kill() {
      if (status == null) {
        LibC.kill(pid, LibC.SIGKILL);
      }
    }
  }
}
