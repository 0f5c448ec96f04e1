/**
 * Disks: raw images attached to a machine ({@link dev.ferry.block.DiskImage}: one read/write API,
 * a 1 MiB dirty bitmap while a migration runs, shared-storage handover by inactivate/activate) and
 * QEMU 7.2's iterative block migration ({@link dev.ferry.block.BlockLiveState}, the {@code block}
 * live section; wire layout in {@link dev.ferry.block.BlockDescriptor}, codec {@link
 * dev.ferry.block.BlockRecordWriter} / {@link dev.ferry.block.BlockReader}), plus the {@code disk}
 * guest program's record check ({@link dev.ferry.block.DiskCheck}).
 */
package dev.ferry.block;
