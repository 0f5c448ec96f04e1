package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each load has its own RAM state: the first load into a fresh machine skips zero pages (its RAM is
 * known to be zero), a later load into the same machine after its guest wrote everywhere must write
 * them, and both end with the saved machine's exact state.
 */
class PerLoadStateTest {
  static final long HEAP = 2 << 20;

  static void writeEverywhere(FerryMachine m, long value) throws InterruptedException {
    try (GuestThread t = m.openGuestThread()) {
      t.enterStep();
      try {
        for (long off = 0; off < HEAP; off += 4096) {
          t.putLong(0, off, value + off);
        }
      } finally {
        t.exitStep();
      }
    }
  }

  @Test
  void aLoadAfterTheGuestRanWritesTheZeroPagesTheFirstLoadSkipped(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("one-page.ferry");
    StateDigest saved;
    try (FerryMachine m = FerryMachine.builder().ram("heap", HEAP).build()) {
      m.start();
      try (GuestThread t = m.openGuestThread()) {
        t.enterStep();
        try {
          t.putLong(0, 8192, 42); // one page of data, the rest zero pages in the stream
        } finally {
          t.exitStep();
        }
      }
      m.pause();
      m.save(file);
      saved = m.digest();
    }
    try (FerryMachine m = FerryMachine.builder().ram("heap", HEAP).build()) {
      m.load(file); // fresh RAM: zero pages skipped
      assertThat(m.digest().firstDifference(saved)).isEmpty();
      m.start();
      writeEverywhere(m, 7);
      m.pause();
      m.load(file); // the guest wrote: zero pages written this time
      assertThat(m.digest().firstDifference(saved)).isEmpty();
    }
  }
}
