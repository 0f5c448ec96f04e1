package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The warm-up of the first migration: every step works (a failing one would only be logged). */
class MigrationWarmupTest {
  @Test
  void everyStepSucceedsAndRepeats() {
    assertThat(MigrationWarmup.run()).isEmpty();
    assertThat(MigrationWarmup.run()).as("a second time").isEmpty();
  }

  @Test
  void startsOnceInTheBackground() {
    MigrationWarmup.startInBackground();
    MigrationWarmup.startInBackground(); // no second thread, no error
    assertThat(Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("migration-warmup")).count())
        .isLessThanOrEqualTo(1);
  }
}
