package dev.ferry.ram;

import java.io.IOException;

/**
 * The destination's side of the multifd ordering rule, called by {@link RamLoader} at every RAM EOS
 * of the main stream during precopy (QEMU 7.2's {@code multifd_recv_sync_main}): waits until every
 * channel has read up to its SYNC packet, lets the channels read on, and reports the pages they placed
 * before their SYNC through {@link RamLoader#multifdPagesPlaced} before it returns. So all pages of one
 * section are in guest RAM, and in the loader's bookkeeping, before anything of the next is applied.
 */
@FunctionalInterface
public interface MultifdSync {
  void syncAtEos(RamLoader loader) throws IOException;
}
