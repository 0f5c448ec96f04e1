package dev.ferry.kv;

import dev.ferry.api.FerryMachine;
import dev.ferry.api.GuestThread;
import dev.ferry.api.Region;
import dev.ferry.api.RunState;
import dev.ferry.kv.store.KvMemory;
import dev.ferry.kv.store.KvState;
import dev.ferry.kv.store.KvStateDevice;
import java.time.Duration;

/**
 * The service's machine, through Ferry's public API only: a {@link FerryMachine} with one RAM
 * region {@value #REGION} for the keyspace and the device {@value KvStateDevice#IDSTR} for its
 * bookkeeping; each worker is a {@link GuestThread}.
 */
public final class FerryKvGuest implements KvGuest {
  /** The RAM region that holds the keyspace. */
  public static final String REGION = "kv";

  private final FerryMachine machine;
  private final KvState state;
  private final int region;
  private final long regionBytes;

  private FerryKvGuest(FerryMachine machine, KvState state) {
    this.machine = machine;
    this.state = state;
    Region r = machine.region(REGION);
    this.region = r.index();
    this.regionBytes = r.sizeBytes();
  }

  /**
   * Adds the keyspace's region and device to {@code builder}; after {@code build()}, {@link
   * #attach} the machine with the same {@code state}.
   */
  public static FerryMachine.Builder configure(FerryMachine.Builder builder, long regionBytes, KvState state) {
    if (state.regionBytes != regionBytes) {
      throw new IllegalArgumentException("state describes a region of " + state.regionBytes + " bytes, not " + regionBytes);
    }
    return builder.ram(REGION, regionBytes).device(KvStateDevice.IDSTR, KvStateDevice.DESCRIPTION, state);
  }

  /** The guest of a machine built with {@link #configure}. */
  public static FerryKvGuest attach(FerryMachine machine, KvState state) {
    return new FerryKvGuest(machine, state);
  }

  public FerryMachine machine() {
    return machine;
  }

  @Override
  public long regionBytes() {
    return regionBytes;
  }

  @Override
  public KvState state() {
    return state;
  }

  @Override
  public boolean migratedAway() {
    return machine.runState() == RunState.POSTMIGRATE;
  }

  @Override
  public String runState() {
    return machine.runState().qapiName();
  }

  @Override
  public Worker openWorker() {
    GuestThread t = machine.openGuestThread();
    KvMemory memory = new GuestThreadMemory(t, region, regionBytes);
    return new Worker() {
      @Override
      public boolean tryEnterStep(Duration timeout) throws InterruptedException {
        return t.tryEnterStep(timeout);
      }

      @Override
      public void exitStep() {
        t.exitStep();
      }

      @Override
      public KvMemory memory() {
        return memory;
      }

      @Override
      public void close() {
        t.close();
      }
    };
  }

  /** The region through a guest thread's accessors: writes mark their pages dirty for migration. */
  private record GuestThreadMemory(GuestThread t, int region, long byteSize) implements KvMemory {
    @Override
    public byte getByte(long offset) {
      return t.getByte(region, offset);
    }

    @Override
    public int getInt(long offset) {
      return t.getInt(region, offset);
    }

    @Override
    public long getLong(long offset) {
      return t.getLong(region, offset);
    }

    @Override
    public void putInt(long offset, int value) {
      t.putInt(region, offset, value);
    }

    @Override
    public void putLong(long offset, long value) {
      t.putLong(region, offset, value);
    }

    @Override
    public void read(long offset, byte[] dst, int dstOffset, int length) {
      t.read(region, offset, dst, dstOffset, length);
    }

    @Override
    public void write(long offset, byte[] src, int srcOffset, int length) {
      t.write(region, offset, src, srcOffset, length);
    }
  }
}
