package dev.ferry.machine;

import dev.ferry.ram.RamBlock;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Verifies the {@code stress} pattern on a stopped machine by the rule of QEMU migration-test's
 * {@code check_guests_ram}: walking the test byte of every 4 KiB page in order (blocks in order),
 * each byte equals the previous one, except at most one place where it is exactly one less (mod
 * 256) — where the incrementer stood when the machine stopped. Every other change counts as a bad
 * page.
 */
public final class StressCheck {
  /** How many bad pages a result lists (QEMU prints the first 10). */
  public static final int MAX_REPORTED = 10;

  private static final int PAGE = 4096;

  /** One page that broke the pattern: its byte compared with the byte of the page before it. */
  public record BadPage(String block, long pageOffset, int previousValue, int value) {
    @Override
    public String toString() {
      return block + "@0x" + Long.toHexString(pageOffset) + ": " + value + " after " + previousValue;
    }
  }

  /**
   * @param pagesChecked pages read
   * @param badPageCount pages that broke the pattern (0 = pass)
   * @param firstBadPages the first {@link #MAX_REPORTED} of them
   * @param edge where the incrementer stopped (the page whose byte is one less), or null for none
   */
  public record Result(long pagesChecked, long badPageCount, List<BadPage> firstBadPages, BadPage edge) {
    public boolean passed() {
      return badPageCount == 0;
    }

    /** One line for logs and the demo report. */
    public String summary() {
      if (passed()) {
        return "stress check passed: " + pagesChecked + " pages" + (edge == null ? ", no edge" : ", edge at " + edge);
      }
      return "stress check FAILED: " + badPageCount + " bad of " + pagesChecked + " pages, first " + firstBadPages;
    }
  }

  private StressCheck() {}

  /** Checks a machine; it must be stopped (the check reads RAM while no vCPU writes it). */
  public static Result check(Machine machine) {
    if (machine.isRunning()) {
      throw new IllegalStateException("stress check needs a stopped machine, state is " + machine.runState());
    }
    return check(machine.ramBlocks());
  }

  /** Checks blocks in order, as one address space. */
  public static Result check(List<RamBlock> blocks) {
    long checked = 0;
    long bad = 0;
    List<BadPage> first = new ArrayList<>();
    BadPage edge = null;
    boolean started = false;
    int last = 0;
    for (RamBlock block : blocks) {
      var mem = block.memory();
      for (long off = 0; off < block.usedLength(); off += PAGE) {
        int b = Byte.toUnsignedInt(mem.get(ValueLayout.JAVA_BYTE, off + GuestPrograms.STRESS_TEST_OFFSET));
        checked++;
        if (started && b != last) {
          if (((b + 1) & 0xff) == last && edge == null) {
            edge = new BadPage(block.name(), off, last, b);
          } else {
            bad++;
            if (first.size() < MAX_REPORTED) {
              first.add(new BadPage(block.name(), off, last, b));
            }
          }
        }
        started = true;
        last = b;
      }
    }
    return new Result(checked, bad, List.copyOf(first), edge);
  }
}
