package dev.ferry.stream;

import java.nio.channels.FileChannel;

/**
 * A migration channel over a regular file ({@code file:}): every byte of the stream has a fixed
 * offset, so {@link MigrationOutput} and {@link MigrationInput} can also write and read at an
 * offset of their choice and move the stream's position forward over a region (QEMU's
 * {@code QIO_CHANNEL_FEATURE_SEEKABLE}, which the {@code mapped-ram} layout needs).
 */
public interface SeekableChannel {
  /** The file; positional reads and writes go straight to it, the stream's own bytes through the channel. */
  FileChannel fileChannel();
}
