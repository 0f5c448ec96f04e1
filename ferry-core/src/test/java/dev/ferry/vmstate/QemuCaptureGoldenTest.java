package dev.ferry.vmstate;

import dev.ferry.savevm.VMStateEntry;
import dev.ferry.stream.QemuJsonWriter;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.testing.Captures;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real QEMU 7.2 devices, described with the builder: each section body of the captures loads,
 * saves back to the same bytes, and describes itself with the same vmdesc text QEMU wrote.
 */
class QemuCaptureGoldenTest {
  record Device<T>(String idstr, int instanceId, VMStateDescription<T> vmsd, Supplier<T> factory) {}

  static final List<Device<?>> DEVICES =
      List.of(
          new Device<>("timer", 0, QemuDevices.TIMER, QemuDevices.Timer::new),
          new Device<>("cpu_common", 0, QemuDevices.CPU_COMMON, QemuDevices.CpuCommon::new),
          new Device<>("fw_cfg", 0, QemuDevices.FW_CFG, QemuDevices.FwCfg::new),
          new Device<>("PCIBUS", 0, QemuDevices.PCIBUS, QemuDevices.PciBus::new),
          new Device<>("dma", 0, QemuDevices.DMA, QemuDevices.Dma::new),
          new Device<>("dma", 1, QemuDevices.DMA, QemuDevices.Dma::new),
          new Device<>("hpet", 0, QemuDevices.HPET, QemuDevices.Hpet::new),
          new Device<>("mc146818rtc", 0, QemuDevices.RTC, QemuDevices.Rtc::new),
          new Device<>("pckbd", 0, QemuDevices.PCKBD, QemuDevices.IsaKbd::new),
          new Device<>("globalstate", 0, QemuDevices.GLOBALSTATE, QemuDevices.GlobalState::new));

  static List<Arguments> cases() {
    return Captures.ANALYZABLE.stream()
        .flatMap(c -> DEVICES.stream().map(d -> Arguments.of(c, d)))
        .toList();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void loadsSavesAndDescribesLikeQemu(String capture, Device<?> device) throws IOException {
    check(capture, device);
  }

  private static <T> void check(String capture, Device<T> device) throws IOException {
    byte[] stream = Captures.stream(capture);
    String vmdesc = vmdesc(stream);
    int body = findBody(stream, device.idstr(), device.instanceId(), device.vmsd().version());

    T obj = device.factory().get();
    MigrationInput in = MigrationInput.of(Arrays.copyOfRange(stream, body, stream.length), body);
    VMStateEntry<T> entry = VMStateEntry.of(device.idstr(), device.instanceId(), device.vmsd(), obj);
    entry.load(in, device.vmsd().version());
    int end = (int) in.position();
    if (!capture.contains("nofooter")) {
      assertThat(stream[end]).as("footer after the body").isEqualTo((byte) 0x7E);
      assertThat(Arrays.copyOfRange(stream, end + 1, end + 5))
          .as("footer section id")
          .isEqualTo(Arrays.copyOfRange(stream, body - 13 - device.idstr().length(),
              body - 9 - device.idstr().length()));
    }

    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    QemuJsonWriter desc = new QemuJsonWriter();
    try (MigrationOutput out = new MigrationOutput(Channels.newChannel(bytes))) {
      desc.beginObject().name("name").value(device.idstr());
      desc.name("instance_id").value(device.instanceId());
      entry.save(out, desc);
      desc.endObject();
    }
    assertThat(bytes.toByteArray()).isEqualTo(Arrays.copyOfRange(stream, body, end));
    assertThat(vmdesc).contains(desc.toString());
  }

  /** The JSON after EOF: 0x06, be32 length, then the text, at the very end of the stream. */
  static String vmdesc(byte[] stream) {
    for (int i = stream.length - 5; i >= 0; i--) {
      if (stream[i] == 0x06 && stream[i + 5] == '{') {
        int len = ByteBuffer.wrap(stream, i + 1, 4).getInt();
        if (i + 5 + len == stream.length) {
          return new String(stream, i + 5, len, StandardCharsets.US_ASCII);
        }
      }
    }
    throw new AssertionError("no vmdesc at the end of the stream");
  }

  /** Offset of the body after the FULL header (0x04, id, idstr, instance, version) of idstr. */
  static int findBody(byte[] s, String idstr, int instance, int version) {
    byte[] idb = idstr.getBytes(StandardCharsets.ISO_8859_1);
    ByteBuffer tail = ByteBuffer.allocate(1 + idb.length + 8);
    tail.put((byte) idb.length).put(idb).putInt(instance).putInt(version);
    byte[] pattern = tail.array();
    outer:
    for (int i = 5; i + pattern.length <= s.length; i++) {
      if (s[i - 5] != 0x04) {
        continue;
      }
      for (int k = 0; k < pattern.length; k++) {
        if (s[i + k] != pattern[k]) {
          continue outer;
        }
      }
      return i + pattern.length;
    }
    throw new AssertionError("no FULL section " + idstr + " " + instance);
  }
}
