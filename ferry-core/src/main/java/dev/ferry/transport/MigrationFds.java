package dev.ferry.transport;

import dev.ferry.libc.LibC;
import java.io.IOException;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The descriptors {@code fd:} may use, process-wide. {@code fd:N} takes only a descriptor recorded
 * for the purpose: one the process inherited and was told about at start ({@code ferry run
 * --incoming fd:N}, {@code --fd N}, or {@link #allowInherited} from an embedding program), or one
 * this process made for it ({@link InheritedFds#socketPair()}, {@link InheritedFds#pipe()}). {@code
 * fd:NAME} takes one passed over the monitor with QMP {@code getfd NAME} ({@link #put}), as QEMU's.
 * Anything else is refused: a number is not enough, since every descriptor of the process has one
 * (the monitor's own connection, a log file, the JVM's jars).
 *
 * <p>A descriptor is claimed once: opening {@code fd:} takes it out of the registry, and the
 * channel closes it when done (QEMU's {@code monitor_get_fd} does the same).
 */
public final class MigrationFds {
  private static final Set<Integer> NUMBERED = ConcurrentHashMap.newKeySet();
  private static final Map<String, Integer> NAMED = new ConcurrentHashMap<>();

  private MigrationFds() {}

  /**
   * Records {@code fd}, which this process inherited, for one {@code fd:N} migration (made
   * close-on-exec, so children do not keep it).
   *
   * @throws IOException when {@code fd} is not an open descriptor
   */
  public static void allowInherited(int fd) throws IOException {
    if (fd < 0 || LibC.fcntl(fd, LibC.F_GETFD, 0) < 0) {
      throw new IOException("fd:" + fd + ": not an open descriptor of this process");
    }
    NUMBERED.add(fd);
  }

  /** A descriptor this process created for {@code fd:} use. */
  static void allowCreated(int fd) {
    NUMBERED.add(fd);
  }

  /** No longer usable as {@code fd:N} (e.g. closed by its owner). */
  static void forget(int fd) {
    NUMBERED.remove(fd);
  }

  /**
   * QMP {@code getfd}: {@code fd} (received with SCM_RIGHTS; now owned here) becomes {@code
   * fd:NAME}. A descriptor already under that name is closed, as in QEMU.
   *
   * @throws IllegalArgumentException for a name starting with a digit (QEMU's rule: it would read
   *     as a number); {@code fd} is closed then
   */
  public static void put(String name, int fd) {
    if (name.isEmpty() || Character.isDigit(name.charAt(0))) {
      LibC.close(fd);
      throw new IllegalArgumentException("Parameter 'fdname' expects a name not starting with a digit");
    }
    Integer old = NAMED.put(name, fd);
    if (old != null && old != fd) {
      LibC.close(old);
    }
  }

  /**
   * QMP {@code closefd}: closes the descriptor named {@code name}.
   *
   * @throws IllegalArgumentException with QEMU's words when there is none
   */
  public static void close(String name) {
    Integer fd = NAMED.remove(name);
    if (fd == null) {
      throw new IllegalArgumentException("File descriptor named '" + name + "' not found");
    }
    LibC.close(fd);
  }

  /** Whether {@code fd:NAME} would find a descriptor now. */
  public static boolean hasNamed(String name) {
    return NAMED.containsKey(name);
  }

  /** Claims the descriptor {@code uri} names; one-line errors start with the URI. */
  static int take(MigrationUri.Fd uri) throws IOException {
    if (uri.name() != null) {
      Integer fd = NAMED.remove(uri.name());
      if (fd == null) {
        throw new IOException(uri.text() + ": File descriptor named '" + uri.name() + "' has not been found");
      }
      return fd;
    }
    if (!NUMBERED.remove(uri.fd())) {
      throw new IOException(uri.text() + ": descriptor " + uri.fd() + " was not given to this process for migration"
          + " (inherit it with ferry run --fd " + uri.fd() + " or --incoming fd:" + uri.fd()
          + ", or pass it over the monitor with getfd and use fd:NAME)");
    }
    return uri.fd();
  }

  /** Puts a claimed descriptor back (the channel could not be opened on it). */
  static void unclaim(MigrationUri.Fd uri, int fd) {
    if (uri.name() != null) {
      NAMED.putIfAbsent(uri.name(), fd);
    } else {
      NUMBERED.add(fd);
    }
  }
}
