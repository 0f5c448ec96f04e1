package dev.ferry.ram;

import dev.ferry.savevm.StreamCommand;
import dev.ferry.stream.MigrationStreamException;
import java.util.List;

/**
 * The postcopy side of one RAM save (a {@link dev.ferry.savevm.LiveSave} of {@link RamLiveState}
 * opened with {@link RamSaveOptions#postcopyRam()}): the switch, and the destination's page
 * requests, which the migration thread serves ahead of the background scan.
 */
public interface RamPostcopySave {
  /**
   * Queues a destination's page request (REQ_PAGES / REQ_PAGES_ID, on the return-path thread)
   * after QEMU's checks: a known block, start and length multiples of 4 KiB, inside the block.
   */
  void queuePageRequest(String blockName, long start, long length) throws MigrationStreamException;

  /** Whether page requests wait (they are served even when the rate limit is exhausted). */
  boolean hasPageRequests();

  /** The switch (machine stopped): the last sync and the discard commands to send. */
  List<StreamCommand.RamDiscard> startPostcopy();

  /** The names of the RAM blocks, in block order (one RECV_BITMAP each at recovery). */
  List<String> blockNames();

  /**
   * The size in bytes of block {@code blockName}'s received bitmap as QEMU encodes it (one bit per
   * target page, rounded up to 8 bytes), or -1 for an unknown block.
   */
  long receivedBitmapBytes(String blockName);

  /**
   * Postcopy recovery, on the return-path thread while the migration thread waits: the
   * destination's received bitmap of {@code blockName} (bit i of byte i/8 = target page i arrived)
   * replaces this save's bitmap of the block: every page not received is to be sent again.
   */
  void receivedBitmap(String blockName, byte[] bitmap) throws MigrationStreamException;

  /**
   * Postcopy recovery, once every block's received bitmap was applied: pages go to {@code out}
   * from now on, the first naming its block; requests queued for the lost connection are dropped
   * (the destination sends its pending ones again).
   */
  void resume(dev.ferry.stream.MigrationOutput out);
}
