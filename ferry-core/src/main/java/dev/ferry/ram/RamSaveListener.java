package dev.ferry.ram;

/** What the RAM saver reports while it sends (the migration's statistics implement it). */
public interface RamSaveListener {
  default void zeroPage() {}

  default void normalPage(int bytes) {}

  default void xbzrlePage(int encodedBytes) {}

  default void xbzrleCacheMiss() {}

  default void xbzrleOverflow() {}

  /** A dirty-log sync found {@code newlyDirtyPages} pages to send again; {@code pass} counts syncs from 1. */
  default void sync(long pass, long newlyDirtyPages) {}

  RamSaveListener NONE = new RamSaveListener() {};
}
