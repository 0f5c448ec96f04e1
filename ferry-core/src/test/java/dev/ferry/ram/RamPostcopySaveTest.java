package dev.ferry.ram;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.savevm.LiveSave;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.savevm.StreamCommand;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.RamFlag;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The source's side of postcopy, record by record: page requests go ahead of the background scan
 * (FIFO), the scan continues after the last requested host page, a request for a page the scan
 * already sent (the race QEMU's destination sees as a duplicate) and a repeated request send
 * nothing, a huge page goes whole, and over the whole postcopy phase no page is sent twice and
 * every page is sent once.
 */
@Timeout(60)
class RamPostcopySaveTest {
  private static final int PAGE = 4096;

  record Page(String block, long offset) {}

  /** The block of the last record: a CONTINUE record names none, also in the next body. */
  String block;

  /** The pages of one PART body (PAGE and ZERO records, in order) up to its EOS. */
  List<Page> pages(byte[] body) throws IOException {
    MigrationInput in = MigrationInput.of(body);
    List<Page> out = new ArrayList<>();
    while (true) {
      long word = in.readBe64();
      if (RamFlag.EOS.isSet(word)) {
        assertThat(in.atEnd()).as("EOS ends the body").isTrue();
        return out;
      }
      if (!RamFlag.CONTINUE.isSet(word)) {
        block = new String(in.readBytes(in.readU8()), StandardCharsets.US_ASCII);
      }
      assertThat(RamFlag.XBZRLE.isSet(word)).as("no XBZRLE after the switch").isFalse();
      if (RamFlag.ZERO.isSet(word)) {
        in.readU8();
      } else {
        assertThat(RamFlag.PAGE.isSet(word)).as("record flags %s", RamFlag.describe(word & 0xfff)).isTrue();
        in.skip(PAGE);
      }
      assertThat(block).as("a first record names its block").isNotNull();
      out.add(new Page(block, word & -PAGE));
    }
  }

  /** The whole stream of one save (one output, as a migration has). */
  final ByteArrayOutputStream stream = new ByteArrayOutputStream();

  final MigrationOutput out = new MigrationOutput(Channels.newChannel(stream));

  /** One PART body. */
  byte[] iterate(LiveSave save, boolean rateLimited) throws IOException {
    out.flush();
    int from = stream.size();
    save.iterate(out, () -> rateLimited);
    out.flush();
    return java.util.Arrays.copyOfRange(stream.toByteArray(), from, stream.size());
  }

  @Test
  void requestsGoFirstTheScanFollowsThemAndNoPageGoesTwice() throws Exception {
    try (GuestRam ram = new GuestRam(List.of(RamBlock.allocate("ram", 1 << 20), RamBlock.allocate("huge", 4 << 20, 2 << 20)))) {
      for (RamBlock b : ram.blocks()) {
        for (long off = 0; off < b.usedLength(); off += PAGE) {
          b.memory().set(ValueLayout.JAVA_LONG_UNALIGNED, off, off + 1); // no zero pages
        }
      }
      RamLiveState state = new RamLiveState(ram);
      try (LiveSave save = state.openSave(SaveOptions.of(new RamSaveOptions(RamSaveListener.NONE, false, 0, true)))) {
        RamPostcopySave pc = (RamPostcopySave) save;
        save.setup(out);
        // the switch before any page went: every page of both blocks is discarded
        List<StreamCommand.RamDiscard> discards = pc.startPostcopy();
        assertThat(discards).extracting(StreamCommand.RamDiscard::blockName).containsExactly("ram", "huge");
        List<Page> sent = new ArrayList<>();
        // the background alone, stopped by the rate limit after its first check: ram pages 0..63
        List<Page> first = pages(iterate(save, true));
        assertThat(first).hasSize(RamLiveState.CHECK_EVERY_PAGES);
        assertThat(first.getFirst()).isEqualTo(new Page("ram", 0));
        assertThat(first.getLast()).isEqualTo(new Page("ram", (RamLiveState.CHECK_EVERY_PAGES - 1) * PAGE));
        sent.addAll(first);

        pc.queuePageRequest("ram", 16 * PAGE, PAGE); // sent by the scan already: nothing goes
        pc.queuePageRequest("ram", 192 * PAGE, PAGE);
        pc.queuePageRequest("ram", 192 * PAGE, PAGE); // asked twice: sent once
        pc.queuePageRequest("huge", 0x200000 + 3 * PAGE, PAGE); // inside a 2 MiB page: the whole host page
        assertThat(pc.hasPageRequests()).isTrue();
        // the rate limit is exhausted, yet requests are served (and the scan goes on to the next check)
        List<Page> second = pages(iterate(save, true));
        assertThat(pc.hasPageRequests()).isFalse();
        assertThat(second.getFirst()).isEqualTo(new Page("ram", 192 * PAGE));
        for (int i = 0; i < 512; i++) {
          assertThat(second.get(1 + i)).isEqualTo(new Page("huge", 0x200000 + (long) i * PAGE));
        }
        // the scan continues after the last requested host page: the end of 'huge', so back to
        // 'ram' where it had stopped
        assertThat(second.get(513)).isEqualTo(new Page("ram", RamLiveState.CHECK_EVERY_PAGES * PAGE));
        sent.addAll(second);

        boolean done = false;
        for (int i = 0; i < 1000 && !done; i++) {
          byte[] body = iterate(save, false);
          sent.addAll(pages(body));
          done = save.pendingEstimateBytes() == 0;
        }
        assertThat(done).as("postcopy background finished").isTrue();
        Set<Page> unique = new HashSet<>(sent);
        assertThat(unique).as("no page sent twice in postcopy").hasSameSizeAs(sent);
        assertThat(unique).hasSize((1 << 20) / PAGE + (4 << 20) / PAGE);
        // a huge page's target pages go back to back, whole
        for (int i = 0; i < sent.size(); i++) {
          Page p = sent.get(i);
          if (p.block().equals("huge") && p.offset() % (2 << 20) == 0) {
            for (int k = 1; k < 512; k++) {
              assertThat(sent.get(i + k)).isEqualTo(new Page("huge", p.offset() + (long) k * PAGE));
            }
          }
        }
      }
    }
  }
}
