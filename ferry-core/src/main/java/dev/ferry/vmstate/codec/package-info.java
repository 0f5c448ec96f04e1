/**
 * Internal: the wire side of VMState descriptions, for the section stream. See {@link
 * dev.ferry.vmstate.codec.VMStateCodec}.
 */
package dev.ferry.vmstate.codec;
