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
}
