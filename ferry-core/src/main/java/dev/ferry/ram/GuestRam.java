package dev.ferry.ram;

import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;

/**
 * A machine's RAM: its blocks in registration order, the dirty log over them, and the page-fault
 * hook. Guest code reaches it only through {@link GuestMemory} handles from {@link #openMemory()},
 * one per thread; migration code reads and loads blocks directly.
 */
public final class GuestRam implements AutoCloseable {
  private final List<RamBlock> blocks;
  private final DirtyLog dirtyLog;
  private volatile PageFaultHandler pageFaultHandler;
  /** Set when any access handle first enters a step: from then on RAM may hold guest data. */
  private volatile boolean guestStepped;

  public GuestRam(List<RamBlock> blocks) {
    if (blocks.isEmpty()) {
      throw new IllegalArgumentException("a machine needs at least one RAM block");
    }
    for (int i = 0; i < blocks.size(); i++) {
      for (int j = 0; j < i; j++) {
        if (blocks.get(i).name().equals(blocks.get(j).name())) {
          throw new IllegalArgumentException("duplicate RAM block name '" + blocks.get(i).name() + "'");
        }
      }
    }
    this.blocks = List.copyOf(blocks);
    this.dirtyLog = new DirtyLog(this.blocks);
  }

  public List<RamBlock> blocks() {
    return blocks;
  }

  public RamBlock block(String name) {
    return blocks.get(indexOf(name));
  }

  public int indexOf(String name) {
    for (int i = 0; i < blocks.size(); i++) {
      if (blocks.get(i).name().equals(name)) {
        return i;
      }
    }
    throw new NoSuchElementException("no RAM block '" + name + "'");
  }

  /** Sum of the blocks' lengths. */
  public long totalBytes() {
    long n = 0;
    for (RamBlock b : blocks) {
      n += b.usedLength();
    }
    return n;
  }

  public DirtyLog dirtyLog() {
    return dirtyLog;
  }

  /**
   * Installs (or with null removes) the page-fault hook. Steps that begin afterwards use it; install
   * it before the vCPUs run (a postcopy destination does so before RUN).
   */
  public void setPageFaultHandler(PageFaultHandler handler) {
    this.pageFaultHandler = handler;
  }

  /** Whether a page-fault hook is installed (a postcopy destination whose RAM is still arriving). */
  public boolean hasPageFaultHandler() {
    return pageFaultHandler != null;
  }

  PageFaultHandler pageFaultHandler() {
    return pageFaultHandler;
  }

  /**
   * True once guest code (any {@link GuestMemory} handle) has entered a step, i.e. RAM may hold
   * data the guest wrote. A load that skips zero records for fresh RAM checks it.
   */
  public boolean guestStepped() {
    return guestStepped;
  }

  void noteGuestStep() {
    guestStepped = true;
  }

  /** A new access handle for the calling thread (not thread-safe; close it when the thread ends). */
  public GuestMemory openMemory() {
    return new GuestMemory(this);
  }

  @Override
  public void close() {
    for (RamBlock b : blocks) {
      b.close();
    }
  }

  @Override
  public String toString() {
    return "GuestRam" + Objects.toString(blocks);
  }
}
