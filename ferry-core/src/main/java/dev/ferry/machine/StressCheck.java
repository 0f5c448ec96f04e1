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
 *
 * <p>A machine running {@code workingset} is checked by that program's rule instead ({@link
 * #checkWorkingSet}).
 */
public final class StressCheck {
  /** How many bad pages a result lists (QEMU prints the first 10). */
  public static final int MAX_REPORTED = 10;

  private static final int PAGE = 4096;

  /**
   * One page that broke the pattern: its byte compared with the byte of the page before it, or,
   * when {@code detail} is not null, what else is wrong with it.
   */
  public record BadPage(String block, long pageOffset, int previousValue, int value, String detail) {
    public BadPage(String block, long pageOffset, int previousValue, int value) {
      this(block, pageOffset, previousValue, value, null);
    }

    @Override
    public String toString() {
      return block + "@0x" + Long.toHexString(pageOffset) + ": " + (detail != null ? detail : value + " after " + previousValue);
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
    if (machine.program().name().equals(GuestPrograms.WORKINGSET.name())) {
      return checkWorkingSet(machine.ramBlocks(), machine.programOptions());
    }
    return check(machine.ramBlocks());
  }

  /**
   * The {@code workingset} rule. The fill runs in page order, so the pages (all blocks end to end)
   * hold {@link GuestPrograms#workingSetFill} at offset 0 up to some page and zero from there on;
   * outside the working set's first bytes that qword is exact. Once the fill is complete, the
   * working set's first bytes are counters and follow the stress rule: in order, all equal except
   * one place where one is exactly one less (mod 256), where the incrementer stood. While the fill
   * is incomplete every counter is 0.
   */
  public static Result checkWorkingSet(List<RamBlock> blocks, ProgramOptions options) {
    long total = 0;
    for (RamBlock block : blocks) {
      total += block.usedLength() / PAGE;
    }
    long[] set = GuestPrograms.workingSetPages(options, total);
    long bad = 0;
    List<BadPage> first = new ArrayList<>();
    BadPage edge = null;
    long global = 0;
    long filled = -1; // first page found unfilled, -1 while all were filled
    boolean started = false;
    int last = 0;
    for (RamBlock block : blocks) {
      var mem = block.memory();
      for (long off = 0; off < block.usedLength(); off += PAGE, global++) {
        long q = mem.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        boolean inSet = global >= set[0] && global < set[0] + set[1];
        int counter = (int) (q & 0xff);
        long body = inSet ? q & ~0xffL : q;
        long expected = GuestPrograms.workingSetFill(global);
        String problem = null;
        if (filled < 0 && body == 0 && (!inSet || counter == 0)) {
          filled = global;
        }
        if (filled >= 0) {
          if (q != 0) {
            problem = "qword 0x" + Long.toHexString(q) + " after the fill stopped at page " + filled + ", expected 0";
          }
        } else if (body != expected) {
          problem = "fill qword 0x" + Long.toHexString(q) + ", expected 0x" + Long.toHexString(expected)
              + (inSet ? " (low byte: counter)" : "");
        } else if (inSet) {
          if (started && counter != last) {
            if (((counter + 1) & 0xff) == last && edge == null) {
              edge = new BadPage(block.name(), off, last, counter);
            } else {
              problem = "counter " + counter + " after " + last + " (working-set counters must be within one step)";
            }
          }
          started = true;
          last = counter;
        }
        if (problem != null) {
          bad++;
          if (first.size() < MAX_REPORTED) {
            first.add(new BadPage(block.name(), off, last, counter, problem));
          }
        }
      }
    }
    return new Result(total, bad, List.copyOf(first), edge);
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
