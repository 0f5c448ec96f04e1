package dev.ferry.ram;

import java.io.IOException;

/**
 * Where a RAM save sends its normal pages when the {@code multifd} capability is on (a {@link
 * dev.ferry.savevm.SaveOptions} value; the migration's multifd sender implements it). Zero pages
 * and everything else stay on the main stream, as in QEMU 7.2.
 *
 * <p>Ordering contract: the saver calls {@link #syncBeforeEos} right before every RAM EOS it writes
 * during precopy, and writes (and flushes) the EOS only after it returns; so every page queued in a
 * section is on its channel before the section's EOS, and a destination that waits for all SYNCs at
 * the EOS never applies a page of section k after one of section k+1. After the postcopy switch the
 * saver queues nothing and syncs no more: the main stream carries everything.
 */
public interface MultifdQueue {
  /**
   * Queues the page at {@code offset} of {@code block} for a channel; its bytes are read from guest
   * RAM when the channel writes it (a write after the dirty bit was cleared is marked again).
   */
  void queuePage(RamBlock block, long offset) throws IOException;

  /**
   * Sends the partly filled batch, then a SYNC packet on every channel, and returns once every
   * channel has written it (QEMU 7.2's {@code multifd_send_sync_main}).
   */
  void syncBeforeEos() throws IOException;
}
