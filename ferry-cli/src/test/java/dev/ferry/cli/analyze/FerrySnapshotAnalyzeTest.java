package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.machine.CpuDevice;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 3 item 5: {@code ferry analyze} of a snapshot Ferry wrote ({@code MachineHost.save})
 * shows what was saved; and, where QEMU 7.2's {@code analyze-migration.py} is available locally,
 * prints the same JSON as it does (never required: the path comes from {@code
 * -Dferry.qemu.analyzer=PATH} or the environment variable {@code FERRY_QEMU_ANALYZER}).
 */
@Timeout(120)
class FerrySnapshotAnalyzeTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  record Saved(Path file, long[] regs, long pc, long steps, int flags, long[] xregs, long serialTotal, long clockNs) {}

  /** A paused 2-vcpu machine with two RAM blocks, known registers and pending serial bytes. */
  private Saved save(boolean withV2State) throws IOException {
    Path file = tmp.resolve("snap-" + withV2State + ".ferry");
    try (MachineHost h =
        new MachineHost(
            Machine.builder()
                .ramBlock("ram", 256 << 10)
                .ramBlock("vram", 64 << 10)
                .vcpus(2)
                .program("idle")
                .serial(new ByteArrayOutputStream())
                .cpuLayout(CpuDevice.Layout.V2)
                .build())) {
      Machine m = h.machine();
      CpuDevice cpu = m.cpu(1);
      long[] regs = new long[CpuDevice.REGISTER_COUNT];
      for (int i = 0; i < regs.length; i++) {
        regs[i] = (i % 3 == 0 ? -1L : 1L) * (0x1000L * i + 7);
        cpu.setReg(i, regs[i]);
      }
      cpu.setPc(0xabcdef);
      cpu.setSteps(123_456);
      long[] xregs = new long[CpuDevice.XREG_COUNT];
      if (withV2State) {
        cpu.setFlags(0x8000_0001);
        for (int i = 0; i < xregs.length; i++) {
          xregs[i] = i == 5 ? Long.MIN_VALUE : i * 11L;
          cpu.setXreg(i, xregs[i]);
        }
      }
      m.pause();
      m.serial().write("hi");
      h.save(file);
      return new Saved(file, regs, 0xabcdef, 123_456, withV2State ? 0x8000_0001 : 0, xregs,
          m.serial().totalBytes(), m.timer().savedClockNs());
    }
  }

  /** How QEMU's analyzer prints an unsigned integer field of {@code bytes} bytes. */
  static String qemuInt(long v, int bytes) {
    return "0x" + HexFormat.of().toHexDigits(v).substring(16 - 2 * bytes);
  }

  /** How QEMU's analyzer prints a signed int64 field (the decimal value added when negative). */
  static String qemuInt64(long v) {
    return v < 0 ? qemuInt(v, 8) + " (" + v + ")" : qemuInt(v, 8);
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static List<String> qemuInts(long[] values) {
    List<String> out = new ArrayList<>();
    for (long v : values) {
      out.add(qemuInt64(v));
    }
    return out;
  }

  /**
   * The dump's entry for section {@code name}, keyed "name (section id)" as QEMU's analyzer does; the
   * last one of that name (the second cpu, instance 1, is the one with known registers). Section ids
   * are looked up, not hard-coded: the always-registered {@code block} section comes before ram.
   */
  private static JsonNode section(JsonNode state, String name) {
    JsonNode found = null;
    for (var it = state.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (k.startsWith(name + " (")) {
        found = state.get(k);
      }
    }
    if (found == null) {
      throw new AssertionError("no section " + name + " in " + state);
    }
    return found;
  }

  private static String hexBytes(String ascii, int padTo) {
    byte[] b = java.util.Arrays.copyOf(ascii.getBytes(StandardCharsets.US_ASCII), Math.max(padTo, ascii.length()));
    List<String> parts = new ArrayList<>();
    for (byte x : b) {
      parts.add(String.format("%02x", x & 0xff));
    }
    return String.join(" ", parts);
  }

  @Test
  void dumpStateShowsWhatWasSaved() throws IOException {
    for (boolean v2 : new boolean[] {false, true}) {
      Saved s = save(v2);
      AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry("analyze", s.file().toString(), "--dump", "state");
      assertThat(r.err()).isEmpty();
      assertThat(r.exit()).isZero();
      JsonNode state = JSON.readTree(r.out());
      assertThat(section(state, "ram").get("section sizes").get("ram").asText()).isEqualTo(qemuInt(256 << 10, 8));
      assertThat(section(state, "ram").get("section sizes").get("vram").asText()).isEqualTo(qemuInt(64 << 10, 8));
      JsonNode cpu = section(state, "cpu");
      assertThat(cpu).as(r.out()).isNotNull();
      assertThat(texts(cpu.get("regs"))).isEqualTo(qemuInts(s.regs()));
      assertThat(cpu.get("pc").asText()).isEqualTo(qemuInt(s.pc(), 8));
      assertThat(cpu.get("steps").asText()).isEqualTo(qemuInt(s.steps(), 8));
      assertThat(cpu.get("program").asText()).isEqualTo(hexBytes("idle", 0));
      if (v2) {
        assertThat(cpu.get("flags").asText()).isEqualTo(qemuInt(s.flags(), 4));
        assertThat(texts(cpu.get("cpu/xregs").get("xregs"))).isEqualTo(qemuInts(s.xregs()));
      } else {
        assertThat(cpu.has("flags")).isFalse();
        assertThat(cpu.has("cpu/xregs")).isFalse();
      }
      JsonNode serial = section(state, "serial");
      assertThat(serial.get("fifo_len").asText()).isEqualTo("0x02");
      assertThat(serial.get("fifo").asText()).isEqualTo(hexBytes("hi", 0));
      assertThat(serial.get("total_bytes").asText()).isEqualTo(qemuInt(s.serialTotal(), 8));
      assertThat(section(state, "timer").get("clock_ns").asText()).isEqualTo(qemuInt64(s.clockNs()));
      JsonNode global = section(state, "globalstate");
      assertThat(global.get("size").asText()).isEqualTo(qemuInt("paused".length() + 1, 4));
      assertThat(global.get("runstate").asText()).isEqualTo(hexBytes("paused", 100));
    }
  }

  @Test
  void dumpDescShowsTheDescriptionsAndVersions() throws IOException {
    for (boolean v2 : new boolean[] {false, true}) {
      Saved s = save(v2);
      AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry("analyze", s.file().toString(), "--dump", "desc");
      assertThat(r.exit()).as(r.err()).isZero();
      JsonNode desc = JSON.readTree(r.out());
      assertThat(desc.get("page_size").asInt()).isEqualTo(4096);
      List<String> names = new ArrayList<>();
      desc.get("devices").forEach(d -> names.add(d.get("name").asText() + "#" + d.get("instance_id").asInt()));
      assertThat(names).containsExactly("ferry-ram-layout#0", "cpu#0", "cpu#1", "serial#0", "timer#0", "globalstate#0");
      JsonNode cpu1 = desc.get("devices").get(2);
      assertThat(cpu1.get("version").asInt()).isEqualTo(v2 ? 2 : 1);
      List<String> fields = new ArrayList<>();
      cpu1.get("fields").forEach(f -> fields.add(f.get("name").asText()));
      assertThat(fields).startsWith("regs", "pc", "steps", "program_len", "program");
      assertThat(fields.contains("flags")).isEqualTo(v2);
      assertThat(cpu1.has("subsections")).isEqualTo(v2);
      if (v2) {
        assertThat(cpu1.get("subsections").get(0).get("vmsd_name").asText()).isEqualTo("cpu/xregs");
      }
      // cpu 0 has neither v2 addition: written at version 1 without the subsection
      assertThat(desc.get("devices").get(1).get("version").asInt()).isEqualTo(1);
      assertThat(desc.get("devices").get(1).has("subsections")).isFalse();
    }
  }

  // ---------------------------------------------------------------- against QEMU's analyzer

  static String analyzer() {
    String p = System.getProperty("ferry.qemu.analyzer");
    if (p == null || p.isBlank()) {
      p = System.getenv("FERRY_QEMU_ANALYZER");
    }
    return p == null || p.isBlank() ? null : p;
  }

  static boolean qemuAnalyzerAvailable() {
    String p = analyzer();
    if (p == null || !Files.isRegularFile(Path.of(p))) {
      return false;
    }
    try {
      Process pr = new ProcessBuilder("python3", "--version").redirectErrorStream(true).start();
      pr.getInputStream().readAllBytes();
      return pr.waitFor(30, TimeUnit.SECONDS) && pr.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static String runQemuAnalyzer(Path file, String dump) throws IOException, InterruptedException {
    Process pr =
        new ProcessBuilder("python3", analyzer(), "-f", file.toString(), "--dump", dump)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    String out = new String(pr.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(pr.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(pr.exitValue()).as("QEMU analyzer exit for --dump " + dump).isZero();
    return out;
  }

  @Test
  @EnabledIf("qemuAnalyzerAvailable")
  void qemuAnalyzerPrintsTheSameJson() throws Exception {
    for (boolean v2 : new boolean[] {false, true}) {
      Saved s = save(v2);
      for (String dump : List.of("state", "desc")) {
        String qemu = runQemuAnalyzer(s.file(), dump);
        AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry("analyze", s.file().toString(), "--dump", dump);
        assertThat(r.exit()).isZero();
        assertThat(JSON.readTree(r.out())).as(dump).isEqualTo(JSON.readTree(qemu));
      }
    }
  }
}
