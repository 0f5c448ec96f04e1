package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The PING/PONG ledger of what the destination has yet to load. */
class LoadBacklogTest {
  @Test
  void aDestinationThatKeepsUpWithinASectionHasNoBacklog() {
    LoadBacklog b = new LoadBacklog();
    assertThat(b.backlogBytes()).isZero();
    long p1 = b.pinged(100);
    assertThat(b.backlogBytes()).as("the last section is in flight, not backlog").isZero();
    b.ponged(p1);
    long p2 = b.pinged(250);
    assertThat(b.backlogBytes()).isZero();
    b.ponged(p2);
    b.pinged(400);
    assertThat(b.backlogBytes()).isZero();
  }

  @Test
  void unansweredSectionsBeforeTheLastAreBacklog() {
    LoadBacklog b = new LoadBacklog();
    long p1 = b.pinged(100);
    b.pinged(250);
    assertThat(b.backlogBytes()).isEqualTo(100);
    b.pinged(400);
    assertThat(b.backlogBytes()).isEqualTo(250);
    b.ponged(p1);
    assertThat(b.backlogBytes()).isEqualTo(150);
  }

  @Test
  void theStreamsOwnPingsAndStaleOrUnknownPongsAreIgnored() {
    LoadBacklog b = new LoadBacklog();
    long p1 = b.pinged(100);
    b.pinged(250);
    b.pinged(400);
    b.ponged(1); // the setup PING of the return path
    b.ponged(p1 + 10); // never sent
    assertThat(b.backlogBytes()).isEqualTo(250);
    b.ponged(p1 + 1);
    b.ponged(p1); // older than one confirmed already
    assertThat(b.backlogBytes()).isZero();
  }

  @Test
  void moreOutstandingPingsThanSlotsKeepTheirBytesAsBacklog() {
    LoadBacklog b = new LoadBacklog();
    for (int i = 1; i <= 200; i++) {
      b.pinged(i * 10L);
    }
    assertThat(b.backlogBytes()).isEqualTo(1990);
  }
}
