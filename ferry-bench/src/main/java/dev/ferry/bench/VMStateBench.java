package dev.ferry.bench;

import dev.ferry.vmstate.codec.VMStateCodec;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.vmstate.VMStateDescription;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * VMState encode and decode rate of a realistic device (a NIC-like description with 30 fields:
 * scalars, timers, fixed and variable arrays, a buffer, an array of structs and a subsection),
 * against a baseline that moves the same number of bytes through the same stream as one copy.
 * MB/s = ops/s × {@link #BODY_BYTES} (printed at setup).
 *
 * <pre>
 * java -cp ferry-bench/target/ferry-bench.jar:ferry-bench/target/lib/* org.openjdk.jmh.Main VMStateBench -f 1 -wi 2 -i 3
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class VMStateBench {
  static final class Queue {
    long head;
    long tail;
    long base;
    long size;
    boolean enabled;
  }

  static final class Nic {
    long ctrl, status, eecd, eerd, icr, ims, rctl, tctl, rdbal, rdbah;
    long rxMode, txMode, phyState, ledMode;
    long mtu, vlan;
    long rxPackets, txPackets, lastIrqNs;
    long rxTimerNs = -1, txTimerNs = -1;
    boolean linkUp, promisc;
    int[] rxDesc = new int[32];
    byte[] macTable = new byte[64];
    byte[] eeprom = new byte[256];
    long filterCount;
    short[] filters = new short[0];
    List<Queue> queues = new ArrayList<>(List.of(new Queue(), new Queue(), new Queue(), new Queue()));
    long wolCtrl, wolStatus;
    long wolMagic;
  }

  static final VMStateDescription<Queue> QUEUE =
      VMStateDescription.<Queue>builder("nic-queue")
          .version(1)
          .uint32("head", q -> q.head, (q, v) -> q.head = v)
          .uint32("tail", q -> q.tail, (q, v) -> q.tail = v)
          .uint64("base", q -> q.base, (q, v) -> q.base = v)
          .uint32("size", q -> q.size, (q, v) -> q.size = v)
          .bool("enabled", q -> q.enabled, (q, v) -> q.enabled = v)
          .build();

  static final VMStateDescription<Nic> NIC =
      VMStateDescription.<Nic>builder("nic")
          .version(2)
          .minimumVersion(1)
          .uint32("ctrl", n -> n.ctrl, (n, v) -> n.ctrl = v)
          .uint32("status", n -> n.status, (n, v) -> n.status = v)
          .uint32("eecd", n -> n.eecd, (n, v) -> n.eecd = v)
          .uint32("eerd", n -> n.eerd, (n, v) -> n.eerd = v)
          .uint32("icr", n -> n.icr, (n, v) -> n.icr = v)
          .uint32("ims", n -> n.ims, (n, v) -> n.ims = v)
          .uint32("rctl", n -> n.rctl, (n, v) -> n.rctl = v)
          .uint32("tctl", n -> n.tctl, (n, v) -> n.tctl = v)
          .uint32("rdbal", n -> n.rdbal, (n, v) -> n.rdbal = v)
          .uint32("rdbah", n -> n.rdbah, (n, v) -> n.rdbah = v)
          .uint8("rx_mode", n -> n.rxMode, (n, v) -> n.rxMode = v)
          .uint8("tx_mode", n -> n.txMode, (n, v) -> n.txMode = v)
          .uint8("phy_state", n -> n.phyState, (n, v) -> n.phyState = v)
          .uint8("led_mode", n -> n.ledMode, (n, v) -> n.ledMode = v)
          .uint16("mtu", n -> n.mtu, (n, v) -> n.mtu = v)
          .uint16("vlan", n -> n.vlan, (n, v) -> n.vlan = v)
          .int64("rx_packets", n -> n.rxPackets, (n, v) -> n.rxPackets = v)
          .int64("tx_packets", n -> n.txPackets, (n, v) -> n.txPackets = v)
          .int64("last_irq_ns", n -> n.lastIrqNs, (n, v) -> n.lastIrqNs = v).since(2)
          .timer("rx_timer", n -> n.rxTimerNs, (n, v) -> n.rxTimerNs = v)
          .timer("tx_timer", n -> n.txTimerNs, (n, v) -> n.txTimerNs = v)
          .bool("link_up", n -> n.linkUp, (n, v) -> n.linkUp = v)
          .bool("promisc", n -> n.promisc, (n, v) -> n.promisc = v)
          .uint32Array("rx_desc", 32, n -> n.rxDesc)
          .uint8Array("mac_table", 64, n -> n.macTable)
          .buffer("eeprom", 256, n -> n.eeprom)
          .uint8("filter_count", n -> n.filterCount, (n, v) -> n.filterCount = v)
          .uint16VarArray("filters", "filter_count", 64, n -> n.filters, (n, a) -> n.filters = a)
          .structArray("queues", 4, QUEUE, n -> n.queues)
          .unused(4)
          .subsection(
              VMStateDescription.<Nic>builder("nic/wol")
                  .version(1)
                  .needed(n -> n.wolCtrl != 0)
                  .uint32("wol_ctrl", n -> n.wolCtrl, (n, v) -> n.wolCtrl = v)
                  .uint32("wol_status", n -> n.wolStatus, (n, v) -> n.wolStatus = v)
                  .uint64("wol_magic", n -> n.wolMagic, (n, v) -> n.wolMagic = v)
                  .build())
          .build();

  static final int BODY_BYTES;

  static {
    BODY_BYTES = body(sample()).length;
  }

  static Nic sample() {
    Nic n = new Nic();
    n.ctrl = 0x0C40_0241L;
    n.status = 0x8008_0783L;
    n.mtu = 1500;
    n.rxPackets = 123_456_789;
    n.rxTimerNs = 987_654_321;
    n.linkUp = true;
    for (int i = 0; i < 32; i++) {
      n.rxDesc[i] = i * 16;
    }
    for (int i = 0; i < 64; i++) {
      n.macTable[i] = (byte) i;
    }
    n.filterCount = 16;
    n.filters = new short[16];
    for (Queue q : n.queues) {
      q.size = 256;
      q.enabled = true;
    }
    n.wolCtrl = 1;
    n.wolMagic = -1;
    return n;
  }

  static byte[] body(Nic n) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    try (MigrationOutput out = new MigrationOutput(Channels.newChannel(b))) {
      VMStateCodec.save(NIC, out, n);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return b.toByteArray();
  }

  /** Serves the same bytes over and over. */
  static final class RepeatingChannel implements ReadableByteChannel {
    private final byte[] data;
    private int pos;

    RepeatingChannel(byte[] data) {
      this.data = data;
    }

    @Override
    public int read(ByteBuffer dst) {
      int total = 0;
      while (dst.hasRemaining()) {
        int n = Math.min(dst.remaining(), data.length - pos);
        dst.put(data, pos, n);
        pos = (pos + n) % data.length;
        total += n;
      }
      return total;
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }

  private Nic nic;
  private Nic target;
  private MigrationOutput out;
  private MigrationInput in;
  private MigrationInput rawIn;
  private byte[] raw;
  private byte[] rawDst;

  @Setup
  public void setup() {
    nic = sample();
    target = new Nic();
    out = new MigrationOutput(new DiscardChannel());
    in = new MigrationInput(new RepeatingChannel(body(nic)));
    raw = body(nic);
    rawDst = new byte[raw.length];
    rawIn = new MigrationInput(new RepeatingChannel(raw));
    System.out.println("VMStateBench: body " + BODY_BYTES + " bytes per op");
  }

  @Benchmark
  public long encode() throws IOException {
    VMStateCodec.save(NIC, out, nic);
    return out.position();
  }

  @Benchmark
  public int encodeWithVmdesc() throws IOException {
    QemuJsonWriter desc = new QemuJsonWriter();
    desc.beginObject();
    VMStateCodec.save(NIC, out, nic, desc);
    desc.endObject();
    return desc.depth();
  }

  @Benchmark
  public Nic decode() throws IOException {
    VMStateCodec.load(NIC, in, target, 2);
    return target;
  }

  @Benchmark
  public long baselineCopyOut() throws IOException {
    out.writeBytes(raw, 0, raw.length);
    return out.position();
  }

  @Benchmark
  public byte[] baselineCopyIn() throws IOException {
    rawIn.readFully(rawDst, 0, rawDst.length);
    return rawDst;
  }
}
