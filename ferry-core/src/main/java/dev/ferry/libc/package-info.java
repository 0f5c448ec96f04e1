/** Internal: Ferry's one FFM binding of libc (see {@link dev.ferry.libc.LibC}). */
package dev.ferry.libc;
