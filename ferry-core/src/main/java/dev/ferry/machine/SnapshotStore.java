package dev.ferry.machine;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * Named whole-machine snapshots in a directory (QEMU's savevm/loadvm/delvm/info snapshots, with a
 * folder instead of a qcow2 image): {@code NAME.ferry} is the snapshot, a QEMU 7.2 stream that
 * {@code ferry analyze} and QEMU's analyzer read, and {@code NAME.meta} its id, date and machine
 * clock.
 */
public final class SnapshotStore {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  static final String STREAM_SUFFIX = ".ferry";
  static final String META_SUFFIX = ".meta";

  /** One snapshot as {@code info snapshots} lists it. */
  public record Snapshot(String id, String name, long sizeBytes, Instant date, long vmClockNs, Path file) {}

  private final Path dir;
  private final MachineHost host;

  public SnapshotStore(Path dir, MachineHost host) {
    this.dir = dir;
    this.host = host;
  }

  public Path directory() {
    return dir;
  }

  /** Checks a snapshot name: 1-64 chars of letters, digits, '.', '_', '-', not starting with a dot. */
  public static String checkName(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "invalid snapshot name '" + name + "': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    return name;
  }

  /** Saves the machine as {@code name}, replacing a snapshot of that name. */
  public Snapshot save(String name) throws IOException {
    checkName(name);
    Files.createDirectories(dir);
    Path file = dir.resolve(name + STREAM_SUFFIX);
    Snapshot old = find(name); // before the save: afterwards the new file has no meta yet
    host.save(file);
    Properties p = new Properties();
    p.setProperty("id", old != null ? old.id() : Integer.toString(nextId()));
    p.setProperty("date", Instant.now().toString());
    p.setProperty("vm-clock-ns", Long.toString(host.machine().timer().nowNs()));
    Path meta = dir.resolve(name + META_SUFFIX);
    try (Writer w = Files.newBufferedWriter(meta)) {
      p.store(w, "ferry snapshot " + name);
    }
    return read(name);
  }

  /** Loads snapshot {@code name} into the (stopped) machine; the caller decides to run it. */
  public void load(String name) throws IOException {
    Path file = dir.resolve(checkName(name) + STREAM_SUFFIX);
    if (!Files.isRegularFile(file)) {
      throw new NoSuchFileException(file.toString(), null, "snapshot '" + name + "' not found in " + dir);
    }
    host.load(file);
  }

  /** Deletes snapshot {@code name}. */
  public void delete(String name) throws IOException {
    Path file = dir.resolve(checkName(name) + STREAM_SUFFIX);
    if (!Files.deleteIfExists(file)) {
      throw new NoSuchFileException(file.toString(), null, "snapshot '" + name + "' not found in " + dir);
    }
    Files.deleteIfExists(dir.resolve(name + META_SUFFIX));
  }

  /** Every snapshot, by id. */
  public List<Snapshot> list() throws IOException {
    List<Snapshot> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*" + STREAM_SUFFIX)) {
      for (Path p : ds) {
        String f = p.getFileName().toString();
        out.add(read(f.substring(0, f.length() - STREAM_SUFFIX.length())));
      }
    }
    out.sort(Comparator.comparingLong(s -> parseId(s.id())));
    return out;
  }

  private Snapshot find(String name) throws IOException {
    return Files.isRegularFile(dir.resolve(name + STREAM_SUFFIX)) ? read(name) : null;
  }

  private Snapshot read(String name) throws IOException {
    Path file = dir.resolve(name + STREAM_SUFFIX);
    Properties p = new Properties();
    Path meta = dir.resolve(name + META_SUFFIX);
    if (Files.isRegularFile(meta)) {
      try (Reader r = Files.newBufferedReader(meta)) {
        p.load(r);
      }
    }
    Instant date =
        p.containsKey("date") ? Instant.parse(p.getProperty("date")) : Files.getLastModifiedTime(file).toInstant();
    return new Snapshot(
        p.getProperty("id", "0"), name, Files.size(file), date, Long.parseLong(p.getProperty("vm-clock-ns", "0")), file);
  }

  private int nextId() throws IOException {
    int max = 0;
    for (Snapshot s : list()) {
      max = Math.max(max, (int) parseId(s.id()));
    }
    return max + 1;
  }

  private static long parseId(String id) {
    try {
      return Long.parseLong(id);
    } catch (NumberFormatException e) {
      return Long.MAX_VALUE;
    }
  }
}
