package dev.ferry.api;

import java.time.Instant;

/**
 * One saved snapshot (QEMU's {@code info snapshots} line).
 *
 * @param id its number, kept when a snapshot of the same name is replaced
 * @param name its name
 * @param sizeBytes the size of its stream
 * @param date when it was saved
 * @param vmClockNs the machine's virtual clock at the save
 */
public record SnapshotInfo(String id, String name, long sizeBytes, Instant date, long vmClockNs) {}
