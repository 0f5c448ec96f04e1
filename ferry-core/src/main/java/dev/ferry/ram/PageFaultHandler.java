package dev.ferry.ram;

/**
 * Makes sure guest pages are present before a vCPU touches them: the postcopy hook. Ferry's
 * precopy and savevm never install one (every page is present); a postcopy destination installs a
 * handler that checks its received-pages bitmap and, for a missing page, requests it over the
 * return path and blocks until it arrives (QEMU's userfaultfd thread).
 *
 * <p>Called by {@link GuestMemory} before each access with the block index and the byte range;
 * implementations must be fast when the page is present. A blocking implementation that is
 * interrupted re-asserts the interrupt flag and throws {@link java.util.concurrent.CancellationException}.
 */
@FunctionalInterface
public interface PageFaultHandler {
  /** Returns once {@code [offset, offset + length)} of block {@code blockIndex} is present. */
  void ensurePresent(int blockIndex, long offset, long length);
}
