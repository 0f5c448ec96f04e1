/**
 * The byte stream of QEMU 7.2 migration (QEMU's qemu-file.c and the wire constants of savevm.h):
 * {@link dev.ferry.stream.MigrationOutput} and {@link dev.ferry.stream.MigrationInput} over any NIO
 * byte channel, with big-endian primitives, counted strings, zero-copy page writes, the byte
 * position, and a sticky first error; and the wire constants as enums with explicit codes
 * ({@link dev.ferry.stream.SectionType}, {@link dev.ferry.stream.Command}, {@link
 * dev.ferry.stream.ReturnPathMessage}, {@link dev.ferry.stream.RamFlag}). Errors are {@link
 * dev.ferry.stream.MigrationStreamException}s that carry offset, section, field and versions.
 */
package dev.ferry.stream;
