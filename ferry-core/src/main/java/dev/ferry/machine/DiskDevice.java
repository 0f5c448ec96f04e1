package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * A file-backed block device. Its state here is its geometry (path, size, sector size); the image
 * content migrates through the block package (a later issue). Opening creates a sparse image of the
 * given size when the file does not exist, and refuses an existing file of another size.
 */
public final class DiskDevice implements Device, AutoCloseable {
  public static final int DEFAULT_SECTOR_BYTES = 512;
  private static final int MAX_PATH_BYTES = 4096;

  /**
   * Layout v1: {@code size_bytes} (uint64) and {@code sector_bytes} (uint32), which must equal the
   * loading machine's (QEMU's _EQUAL fields: a different disk fails the load naming the field), and
   * {@code path_len} (uint16) + {@code path} (UTF-8), the source's image path, informative only.
   */
  public static final VMStateDescription<DiskDevice> VMSTATE =
      VMStateDescription.<DiskDevice>builder("disk")
          .version(1)
          .minimumVersion(1)
          .preSave(d -> d.pathBuf = d.path.toString().getBytes(StandardCharsets.UTF_8))
          .uint64Equal("size_bytes", DiskDevice::sizeBytes)
          .uint32Equal("sector_bytes", DiskDevice::sectorBytes)
          .uint16("path_len", d -> d.pathBuf.length, (d, v) -> d.pathBuf = new byte[(int) v])
          .vbuffer("path", "path_len", MAX_PATH_BYTES, d -> d.pathBuf, (d, v) -> d.pathBuf = v)
          .build();

  private final Path path;
  private final long sizeBytes;
  private final int sectorBytes;
  private final FileChannel channel;
  /** The image path's bytes while saved, or the source's path after a load. */
  private byte[] pathBuf = new byte[0];

  public DiskDevice(Path path, long sizeBytes, int sectorBytes) throws IOException {
    this.path = Objects.requireNonNull(path, "path");
    if (Integer.bitCount(sectorBytes) != 1 || sectorBytes < 512 || sectorBytes > 65536) {
      throw new IllegalArgumentException("sector size must be a power of two in 512..65536: " + sectorBytes);
    }
    if (sizeBytes <= 0 || sizeBytes % sectorBytes != 0) {
      throw new IllegalArgumentException("disk size " + sizeBytes + " is not a positive multiple of " + sectorBytes);
    }
    this.sizeBytes = sizeBytes;
    this.sectorBytes = sectorBytes;
    FileChannel ch =
        FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      long existing = ch.size();
      if (existing == 0) {
        ch.truncate(0);
        ch.position(sizeBytes - 1);
        ch.write(java.nio.ByteBuffer.allocate(1)); // sparse
      } else if (existing != sizeBytes) {
        throw new IllegalArgumentException("disk image " + path + " has " + existing + " bytes, expected " + sizeBytes);
      }
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    this.channel = ch;
  }

  @Override
  public String idstr() {
    return "disk";
  }

  @Override
  public SaveStateEntry stateEntry() {
    return VMStateEntry.of(idstr(), 0, VMSTATE, this);
  }

  /** The image path recorded in the last saved or loaded state (the source's, after a load). */
  public String statePath() {
    return new String(pathBuf, StandardCharsets.UTF_8);
  }

  public Path path() {
    return path;
  }

  public long sizeBytes() {
    return sizeBytes;
  }

  public int sectorBytes() {
    return sectorBytes;
  }

  public long sectorCount() {
    return sizeBytes / sectorBytes;
  }

  /** The open image (for the block layer). */
  public FileChannel channel() {
    return channel;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
