package dev.ferry.api;

/**
 * A migration's figures as of the moment asked (QEMU's {@code query-migrate} {@code ram} part and
 * times). An incoming migration knows only the bytes received and its total time.
 *
 * @param transferredBytes stream bytes sent (outgoing) or received (incoming)
 * @param remainingBytes RAM bytes still to send (dirty), as of the last pass
 * @param totalRamBytes RAM the migration covers
 * @param zeroPages pages sent as zero pages
 * @param normalPages pages sent whole
 * @param passes passes over RAM begun (dirty-log syncs)
 * @param throughputMbps recent stream bandwidth in megabits per second
 * @param totalTimeMs since the start, or start to end once ended
 * @param setupTimeMs time in setup
 * @param downtimeMs how long the guest was stopped for the switch-over (0 until it happened)
 * @param expectedDowntimeMs the switch-over time the remaining bytes would take now
 * @param postcopyRequests pages the destination asked for during postcopy
 * @param cpuThrottlePercent how much auto-converge slows the source's vCPUs down now (0: not at all)
 */
public record MigrationStatistics(
    long transferredBytes,
    long remainingBytes,
    long totalRamBytes,
    long zeroPages,
    long normalPages,
    long passes,
    double throughputMbps,
    long totalTimeMs,
    long setupTimeMs,
    long downtimeMs,
    long expectedDowntimeMs,
    long postcopyRequests,
    int cpuThrottlePercent) {}
