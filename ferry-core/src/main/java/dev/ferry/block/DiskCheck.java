package dev.ferry.block;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The records the {@code disk} guest program writes, and the check that verifies them (QMP {@code
 * ferry-disk-check}, HMP {@code info disk-check}).
 *
 * <p>The program walks the chunks of all disks in order (disk 0's chunks, then disk 1's, ...), and
 * into the first {@value #RECORD_BYTES} bytes of each chunk it passes writes one record:
 *
 * <pre>
 *  0  "FERRYDSK"  magic
 *  8  be64        chunk index within its disk
 * 16  be64        sequence = pass * totalChunks + global chunk index
 * 24  be32        CRC32C of bytes [0, 24) and [32, 4096)
 * 28  be32        0
 * 32  4064 bytes  payload derived from (disk, chunk, sequence)
 * </pre>
 *
 * Given where the program stands (pass, disk, chunk: its registers), every chunk's record is
 * exactly determined: chunks before the cursor carry this pass's sequence, the others the previous
 * pass's (or are untouched zeros in pass 0). A lost, stale, torn or misplaced write fails the check.
 */
public final class DiskCheck {
  public static final int RECORD_BYTES = 4096;
  private static final byte[] MAGIC = "FERRYDSK".getBytes(StandardCharsets.US_ASCII);

  /** The outcome: {@code records} verified, {@code error} the first problem or null. */
  public record Result(boolean passed, long records, String error) {
    @Override
    public String toString() {
      return passed ? "disk check passed: " + records + " records verified" : "disk check failed: " + error;
    }
  }

  private DiskCheck() {}

  /** Total chunks of {@code disks}. */
  public static long totalChunks(List<DiskImage> disks) {
    long n = 0;
    for (DiskImage d : disks) {
      n += d.chunkCount();
    }
    return n;
  }

  /** Fills {@code record} (at least {@value #RECORD_BYTES} bytes, position 0) for a write. */
  public static void fill(ByteBuffer record, int disk, long chunk, long sequence) {
    ByteBuffer r = record.duplicate().order(ByteOrder.BIG_ENDIAN).clear().limit(RECORD_BYTES);
    r.put(MAGIC).putLong(chunk).putLong(sequence).putInt(0).putInt(0);
    long x = sequence * 0x9E3779B97F4A7C15L ^ chunk * 0xBF58476D1CE4E5B9L ^ (disk + 1);
    while (r.remaining() >= 8) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      r.putLong(x);
    }
    r.putInt(24, crc(r));
  }

  private static int crc(ByteBuffer r) {
    CRC32C c = new CRC32C();
    c.update(r.duplicate().position(0).limit(24));
    c.update(r.duplicate().position(32).limit(RECORD_BYTES));
    return (int) c.getValue();
  }

  /**
   * Verifies every chunk of {@code disks} against the program standing at chunk {@code chunk} of disk
   * {@code disk} in pass {@code pass} (nothing may write the disks meanwhile).
   */
  public static Result check(List<DiskImage> disks, long pass, int disk, long chunk) throws IOException {
    long total = totalChunks(disks);
    long cursor = 0;
    for (int i = 0; i < disk && i < disks.size(); i++) {
      cursor += disks.get(i).chunkCount();
    }
    cursor += chunk;
    ByteBuffer got = ByteBuffer.allocate(RECORD_BYTES);
    ByteBuffer want = ByteBuffer.allocate(RECORD_BYTES);
    long global = 0;
    long records = 0;
    for (int di = 0; di < disks.size(); di++) {
      DiskImage d = disks.get(di);
      for (long c = 0; c < d.chunkCount(); c++, global++) {
        long p = global < cursor ? pass : pass - 1;
        int len = (int) Math.min(RECORD_BYTES, d.sizeBytes() - c * BlockDescriptor.CHUNK_BYTES);
        got.clear().limit(len);
        d.read(c * BlockDescriptor.CHUNK_BYTES, got);
        String where = "drive '" + d.name() + "' chunk " + c + " (offset 0x" + Long.toHexString(c * BlockDescriptor.CHUNK_BYTES) + ")";
        if (len < RECORD_BYTES) {
          return new Result(false, records, where + " is too short for a record (" + len + " bytes)");
        }
        if (p < 0) {
          if (!BlockLiveState.isZero(got, RECORD_BYTES)) {
            return new Result(false, records, where + " holds data the program has not written yet");
          }
          continue;
        }
        long seq = p * total + global;
        fill(want, di, c, seq);
        if (!got.clear().equals(want.clear())) {
          return new Result(false, records, where + ": " + describe(got, seq, c));
        }
        records++;
      }
    }
    return new Result(true, records, null);
  }

  private static String describe(ByteBuffer got, long wantSeq, long wantChunk) {
    byte[] magic = new byte[8];
    got.get(0, magic);
    if (!java.util.Arrays.equals(magic, MAGIC)) {
      return "no record (expected sequence " + wantSeq + ")";
    }
    long chunk = got.getLong(8);
    long seq = got.getLong(16);
    if (got.getInt(24) != crc(got)) {
      return "record checksum mismatch (sequence " + seq + ", torn or corrupt)";
    }
    if (chunk != wantChunk) {
      return "record of chunk " + chunk + " (misplaced write)";
    }
    return "sequence " + seq + ", expected " + wantSeq + (seq < wantSeq ? " (a lost write: stale record)" : "");
  }
}
