/**
 * Guest RAM: {@link dev.ferry.ram.RamBlock} (anonymous mmap, lazily committed, page size per
 * block, discard), {@link dev.ferry.ram.GuestRam} (a machine's blocks, dirty log and page-fault
 * hook), {@link dev.ferry.ram.GuestMemory} (the only way guest code reads and writes RAM), and the
 * dirty log ({@link dev.ferry.ram.DirtyLog} harvested into {@link dev.ferry.ram.DirtyBitmap}s).
 *
 * <p>How a RAM saver uses it: {@code log.start()}, mark every page of {@code log.newBitmaps()} as
 * to-send ({@code setAll}), send; each round {@code log.harvestInto(toSend)} then send what is set
 * (clearing as it goes); at completion, with the machine stopped, one last harvest; then {@code
 * log.stop()}. {@code harvestInto} never loses a mark and waits at most one guest step per vCPU.
 *
 * <p>With the {@code mapped-ram} capability the saver's pages go to fixed offsets of a {@code file:}
 * ({@link dev.ferry.ram.MappedRamLayout}: {@code MappedRamWriter} on the source, {@code
 * MappedRamReader} in the loader) instead of page records.
 */
package dev.ferry.ram;
