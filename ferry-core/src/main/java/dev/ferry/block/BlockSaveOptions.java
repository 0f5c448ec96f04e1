package dev.ferry.block;

/**
 * What one migration tells the {@code block} handler (a {@link dev.ferry.savevm.SaveOptions} value).
 *
 * @param enabled block migration is on for this migration (capability {@code block}, or QMP {@code
 *     migrate blk=true}); off: no {@code block} section (shared storage)
 * @param incremental parameter {@code block-incremental} (QMP {@code migrate inc=true}): the bulk
 *     phase skips the chunks the destination's base already holds (see {@link BlockLiveState})
 * @param zeroBlocks capability {@code zero-blocks}: all-zero chunks go as ZERO_BLOCK without payload
 */
public record BlockSaveOptions(boolean enabled, boolean incremental, boolean zeroBlocks) {
  public static final BlockSaveOptions OFF = new BlockSaveOptions(false, false, false);
}
