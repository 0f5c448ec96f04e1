package dev.ferry.machine;

import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import dev.ferry.savevm.VMStateEntry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.Objects;

/**
 * A serial port: a small transmit FIFO in front of an output sink (a file, a stream, memory).
 * Guest bytes enter the FIFO; it drains to the sink when full, at a newline, and after every guest
 * step. Its state (bytes still in the FIFO, total bytes the guest wrote) travels with the machine;
 * the sink does not.
 */
public final class SerialDevice implements Device {
  /** FIFO depth, as a 16550's. */
  public static final int FIFO_BYTES = 16;

  /** Layout v1: {@code fifo_len} (uint8), {@code fifo} (that many bytes), {@code total_bytes} (uint64). */
  public static final VMStateDescription<SerialDevice> VMSTATE =
      VMStateDescription.<SerialDevice>builder("serial")
          .version(1)
          .minimumVersion(1)
          .uint8("fifo_len", s -> s.fifoLength, SerialDevice::setFifoLength)
          .vbuffer("fifo", "fifo_len", FIFO_BYTES, SerialDevice::pendingBytes, SerialDevice::setPendingBytes)
          .uint64("total_bytes", SerialDevice::totalBytes, SerialDevice::setTotalBytes)
          .build();

  private final OutputStream sink;
  private byte[] fifo = new byte[FIFO_BYTES];
  private int fifoLength;
  private long totalBytes;

  public SerialDevice(OutputStream sink) {
    this.sink = Objects.requireNonNull(sink, "sink");
  }

  @Override
  public String idstr() {
    return "serial";
  }

  @Override
  public SaveStateEntry stateEntry() {
    return VMStateEntry.of(idstr(), 0, VMSTATE, this);
  }

  private synchronized void setFifoLength(long length) {
    if (length < 0 || length > FIFO_BYTES) {
      throw new IllegalArgumentException("serial FIFO length " + length + " exceeds " + FIFO_BYTES);
    }
    fifoLength = (int) length;
  }

  /** Guest output of one byte. */
  public synchronized void write(byte b) {
    fifo[fifoLength++] = b;
    totalBytes++;
    if (fifoLength == fifo.length || b == '\n') {
      flush();
    }
  }

  public synchronized void write(String ascii) {
    for (int i = 0; i < ascii.length(); i++) {
      write((byte) ascii.charAt(i));
    }
  }

  /** Drains the FIFO to the sink. */
  public synchronized void flush() {
    if (fifoLength == 0) {
      return;
    }
    try {
      sink.write(fifo, 0, fifoLength);
      sink.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("serial sink failed", e);
    }
    fifoLength = 0;
  }

  /** Bytes written by the guest but not yet drained. */
  public synchronized byte[] pendingBytes() {
    return Arrays.copyOf(fifo, fifoLength);
  }

  /** Restores the FIFO content (state load); at most {@link #FIFO_BYTES}. */
  public synchronized void setPendingBytes(byte[] pending) {
    if (pending.length > FIFO_BYTES) {
      throw new IllegalArgumentException("serial FIFO holds at most " + FIFO_BYTES + " bytes, got " + pending.length);
    }
    fifo = Arrays.copyOf(pending, FIFO_BYTES);
    fifoLength = pending.length;
  }

  /** Bytes the guest has written since boot (across save/restore). */
  public synchronized long totalBytes() {
    return totalBytes;
  }

  public synchronized void setTotalBytes(long totalBytes) {
    this.totalBytes = totalBytes;
  }

  OutputStream sink() {
    return sink;
  }
}
