package dev.ferry.ram;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Which pages of private anonymous guest RAM were never touched, from Linux's {@code
 * /proc/self/pagemap} (bit 63 present, bit 62 swapped). A page that is neither present nor swapped
 * reads as zeros, so the RAM saver sends it as a zero page and the loader skips a zero record for it
 * without reading it: reading would fault in a page for every untouched 4 KiB, which makes an idle
 * multi-GiB guest slow to migrate. Where pagemap is unavailable every page counts as touched.
 *
 * <h2>An answer is a snapshot in time</h2>
 *
 * "Untouched" is true only at the moment the window was read; a page can be first touched the next
 * instant. A reader may act on a stale answer only where a later step catches the touch. The RAM
 * saver relies on the dirty log for that: a touch after the read is marked, and the next harvest
 * sends the page again. That holds only while no harvest ran between the read and the use, since
 * a harvest consumes the mark (for a page whose bit is already set: it is pending from the first
 * pass) and the send then clears the bit for good. So the saver {@link #invalidate()}s after every
 * harvest (issue 8: with a window read before a sync, pages a guest in its first pass touched
 * meanwhile went out as zero pages and never again). The loader is the only writer of its RAM
 * during a load and remembers which pages it wrote itself.
 */
final class PageMap implements AutoCloseable {
  private static final Path PAGEMAP = Path.of("/proc/self/pagemap");
  private static final long PRESENT_OR_SWAPPED = (1L << 63) | (1L << 62);
  private static final int PAGE = 4096;
  /** Pages per window read at once (16 MiB of guest RAM, 32 KiB of pagemap). */
  static final int WINDOW_PAGES = 4096;

  private final ByteBuffer buf = ByteBuffer.allocateDirect(WINDOW_PAGES * 8).order(ByteOrder.nativeOrder());
  private long windowStart = -1;
  private int windowPages;
  private final long[] touched = new long[WINDOW_PAGES / 64];

  private PageMap() {}

  /**
   * The process's one pagemap channel, opened when this class is initialised (MigrationWarmup does
   * that ahead of a first migration, whose setup paid up to milliseconds for the open) and kept open:
   * one descriptor, and positional reads need no lock, so every reader shares it. An interrupt
   * during a read closes a FileChannel: the next read opens it again. Null when pagemap cannot be
   * read here.
   */
  private static volatile FileChannel shared = openChannel();

  private static FileChannel openChannel() {
    if (!Files.isReadable(PAGEMAP)) {
      return null;
    }
    try {
      return FileChannel.open(PAGEMAP, StandardOpenOption.READ);
    } catch (IOException | UnsupportedOperationException e) {
      return null;
    }
  }

  private static FileChannel channel() {
    FileChannel c = shared;
    if (c != null && !c.isOpen()) {
      synchronized (PageMap.class) {
        c = shared;
        if (c != null && !c.isOpen()) {
          shared = c = openChannel();
        }
      }
    }
    return c;
  }

  /** A reader, or null when pagemap cannot be read here. */
  static PageMap open() {
    return shared == null ? null : new PageMap();
  }

  /**
   * True when the 4 KiB page at virtual {@code address} was never touched (reads as zeros). Pages
   * are looked up a window at a time, so call it for ascending addresses.
   */
  boolean untouched(long address) {
    long page = address / PAGE;
    if (windowStart < 0 || page < windowStart || page >= windowStart + windowPages) {
      if (!load(page)) {
        return false;
      }
    }
    int i = (int) (page - windowStart);
    return (touched[i >>> 6] & (1L << i)) == 0;
  }

  /**
   * Forgets the window, so the next {@link #untouched} reads pagemap afresh: every answer after
   * this call is at least as new as the call.
   */
  void invalidate() {
    windowStart = -1;
  }

  private boolean load(long firstPage) {
    buf.clear();
    FileChannel channel = channel();
    if (channel == null) {
      windowStart = -1;
      return false;
    }
    try {
      int n = channel.read(buf, firstPage * 8);
      if (n < 8) {
        windowStart = -1;
        return false;
      }
      windowPages = n / 8;
    } catch (IOException e) {
      windowStart = -1;
      return false;
    }
    java.util.Arrays.fill(touched, 0);
    for (int i = 0; i < windowPages; i++) {
      if ((buf.getLong(i * 8) & PRESENT_OR_SWAPPED) != 0) {
        touched[i >>> 6] |= 1L << i;
      }
    }
    windowStart = firstPage;
    return true;
  }

  /** Ends this reader; the shared channel stays open for the next one. */
  @Override
  public void close() {
    windowStart = -1;
  }
}
