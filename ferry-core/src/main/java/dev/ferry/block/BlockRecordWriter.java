package dev.ferry.block;

import dev.ferry.stream.MigrationOutput;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Writes the records of a {@code block} section body (see {@link BlockDescriptor}). */
public final class BlockRecordWriter {
  private final MigrationOutput out;

  public BlockRecordWriter(MigrationOutput out) {
    this.out = out;
  }

  /**
   * One chunk at {@code byteOffset} (a multiple of 512) of device {@code device}: {@code data} must
   * hold exactly {@link BlockDescriptor#CHUNK_BYTES} (a tail chunk padded by the caller). The data is
   * queued by reference (a gathering write, no copy): {@code data} must not change before {@link
   * #flush()}.
   */
  public void writeChunk(String device, long byteOffset, ByteBuffer data) throws IOException {
    if (data.remaining() != BlockDescriptor.CHUNK_BYTES) {
      throw new IllegalArgumentException("a block chunk carries exactly 1 MiB, got " + data.remaining());
    }
    header(device, byteOffset, BlockFlag.DEVICE_BLOCK.code());
    out.writePage(data);
  }

  /** Sends what is queued (the chunks' data included). */
  public void flush() throws IOException {
    out.flush();
  }

  /** An all-zero chunk without payload (capability zero-blocks). */
  public void writeZeroChunk(String device, long byteOffset) throws IOException {
    header(device, byteOffset, BlockFlag.DEVICE_BLOCK.code() | BlockFlag.ZERO_BLOCK.code());
  }

  private void header(String device, long byteOffset, int flags) throws IOException {
    if (byteOffset < 0 || byteOffset % BlockDescriptor.SECTOR_BYTES != 0) {
      throw new IllegalArgumentException("chunk offset " + byteOffset + " is not a multiple of 512");
    }
    byte[] name = device.getBytes(StandardCharsets.UTF_8);
    if (name.length > BlockDescriptor.MAX_NAME_BYTES) {
      throw new IllegalArgumentException("device name longer than 255 bytes: " + device);
    }
    out.writeBe64(BlockFlag.word(byteOffset / BlockDescriptor.SECTOR_BYTES, flags));
    out.writeU8(name.length);
    out.writeBytes(name);
  }

  /** A progress record, {@code percent} 0..100. */
  public void writeProgress(int percent) throws IOException {
    if (percent < 0 || percent > 100) {
      throw new IllegalArgumentException("progress " + percent + "%");
    }
    out.writeBe64(BlockFlag.word(percent, BlockFlag.PROGRESS.code()));
  }

  /** End of the section body. */
  public void writeEos() throws IOException {
    out.writeBe64(BlockFlag.EOS.code());
  }
}
