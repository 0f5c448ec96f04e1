package dev.ferry.cli.live;

import dev.ferry.qmp.qapi.MigrationInfo;

/**
 * When {@code ferry migrate --postcopy} and {@code ferry demo --postcopy} send {@code
 * migrate-start-postcopy}: with {@code --postcopy-after SECONDS} once the migration has run that
 * long ({@code total-time}); without it right after the first full pass over RAM (the second dirty
 * sync, {@code dirty-sync-count} 2), which is when precopy would start resending what the guest
 * dirtied. Either way only while the status is {@code active}, and once: a migration that completed
 * before simply completed as precopy, and so does one whose rest fits the downtime limit when the
 * switch is asked for (the engine's rule, as QEMU's).
 */
public final class PostcopySwitch {
  private final Long afterMs;
  private boolean sent;

  /** @param afterSeconds {@code --postcopy-after}, or null for the first-pass rule */
  public PostcopySwitch(Double afterSeconds) {
    if (afterSeconds != null && (afterSeconds < 0 || afterSeconds.isNaN())) {
      throw new IllegalArgumentException("--postcopy-after must be a number of seconds >= 0, got " + afterSeconds);
    }
    this.afterMs = afterSeconds == null ? null : Math.round(afterSeconds * 1000);
  }

  /** True exactly once: when {@code info} says it is time to send {@code migrate-start-postcopy}. */
  public boolean due(MigrationInfo info) {
    if (sent || info.status() == null || !info.status().qapiName().equals("active") || info.ram() == null) {
      return false;
    }
    boolean now = afterMs != null
        ? info.totalTimeMs() != null && info.totalTimeMs() >= afterMs
        : info.ram().dirtySyncCount() >= 2;
    if (now) {
      sent = true;
    }
    return now;
  }
}
