package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** QEMU's rate limit (max-bandwidth / 10 per 100 ms window) with a fake clock and a fake stream position. */
class RateLimiterTest {
  private long nowNs = 1_000_000_000L;
  private long position;

  @Test
  void aWindowAllowsATenthOfTheRateThenRolls() throws Exception {
    RateLimiter r = new RateLimiter(() -> position, () -> nowNs, 10_000_000);
    assertThat(r.budgetBytes()).isEqualTo(1_000_000);
    position += 1_000_000;
    assertThat(r.exhausted()).isFalse();
    position += 1;
    assertThat(r.exhausted()).isTrue();
    nowNs += RateLimiter.WINDOW_NS - 1;
    assertThat(r.exhausted()).isTrue();
    nowNs += 1;
    assertThat(r.exhausted()).as("a new window").isFalse();
    position += 1_000_001;
    assertThat(r.exhausted()).isTrue();
    nowNs += RateLimiter.WINDOW_NS;
    r.awaitWindowEnd(); // the window is over on the fake clock: returns at once and rolls
    assertThat(r.exhausted()).isFalse();
  }

  @Test
  void aNewLimitCountsAtTheNextCheck() {
    RateLimiter r = new RateLimiter(() -> position, () -> nowNs, 10_000_000);
    position += 500_000;
    assertThat(r.exhausted()).isFalse();
    r.setMaxBytesPerSec(4_000_000); // a tool lowers max-bandwidth mid-migration
    assertThat(r.exhausted()).as("400 KB per window now").isTrue();
    r.setMaxBytesPerSec(0);
    assertThat(r.exhausted()).as("0 is unlimited").isFalse();
    assertThat(r.budgetBytes()).isEqualTo(Long.MAX_VALUE);
    r.setMaxBytesPerSec(5);
    assertThat(r.budgetBytes()).as("never below one byte").isEqualTo(1);
  }

  @Test
  void aWakeUpEndsTheWaitEarly() throws Exception {
    RateLimiter r = new RateLimiter(() -> position, System::nanoTime, 1);
    r.wakeUp(); // an urgent page request before the wait: the wait does not sleep its window
    r.awaitWindowEnd();
    Thread waker = Thread.ofPlatform().start(() -> {
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      r.wakeUp();
    });
    r.awaitWindowEnd();
    waker.join();
  }
}
