package dev.ferry.migration;

/**
 * How far the destination's load is behind what this side sent, for the switch-over estimate of a
 * multifd migration with compression and a return path: after each precopy section the migration
 * thread writes a PING on the main stream ({@link #pinged}); the destination answers it with a PONG
 * only once it has read that far, and at the section's RAM EOS it has waited for every channel's
 * pages of the section (QEMU 7.2's sync). So a PONG confirms all bytes sent before its PING.
 *
 * <p>Why: the bytes count as sent when a channel writes them ({@code multifd-bytes}, before
 * compression, as 7.2 counts them), and the channels' socket buffers hold megabytes of compressed
 * pages, which is gigabytes of guest pages when they compress well; 7.2's estimate (pending bytes
 * over that rate) ignores what still waits in the buffers for the destination to decompress, and
 * the downtime overruns. Here the estimate adds {@link #backlogBytes}: the bytes sent before the
 * last-but-one PING that the destination has not confirmed (the last section is normally in
 * flight; what lags further behind is backlog). The destination never writes on a channel, so the
 * main stream's PING/PONG is the only word it gives; a 7.2 destination answers PINGs as Ferry's does.
 *
 * <p>Thread-safe: the migration thread pings, the return-path reader confirms.
 */
final class LoadBacklog {
  /** PING values of this ledger start here (the stream's own PINGs use 1 to 4). */
  static final long FIRST_ID = 0x1000_0000L;
  private static final int SLOTS = 64;

  private final long[] sentAt = new long[SLOTS];
  private long nextId = FIRST_ID;
  /** Ids in {@code [confirmedId + 1, nextId)} are outstanding. */
  private long confirmedId = FIRST_ID - 1;
  private long confirmedBytes;

  /**
   * Records a PING about to be written after {@code sentBytes} bytes (all of its section's pages
   * written) and returns its value; when too many are outstanding the oldest count as confirmed
   * never (their bytes stay in the backlog).
   */
  synchronized long pinged(long sentBytes) {
    long id = nextId++;
    if (id - confirmedId > SLOTS) {
      confirmedId = id - SLOTS; // forget the oldest slot: its bytes stay unconfirmed
    }
    sentAt[(int) (id % SLOTS)] = sentBytes;
    return id; // below 2^32 (a u32 on the wire) for the first 3.7 billion sections
  }

  /** A PONG came back with {@code value}: everything sent before that PING is loaded. */
  synchronized void ponged(long value) {
    long id = value;
    if (id <= confirmedId || id >= nextId) {
      return; // not one of ours (the stream's own PINGs), or stale
    }
    confirmedId = id;
    confirmedBytes = Math.max(confirmedBytes, sentAt[(int) (id % SLOTS)]);
  }

  /**
   * The bytes sent before the last-but-one PING and not yet confirmed: 0 while the destination keeps
   * up within a section.
   */
  synchronized long backlogBytes() {
    long lastButOne = nextId - 2;
    if (lastButOne <= confirmedId || lastButOne < FIRST_ID) {
      return 0;
    }
    return Math.max(0, sentAt[(int) (lastButOne % SLOTS)] - confirmedBytes);
  }
}
