package dev.ferry.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.ferry.machine.CpuDevice;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.migration.ReturnPath;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.savevm.VMStateEntry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;

/**
 * Fuzz targets for core's stream parsers. By default ({@code bin/test}) each runs only its committed
 * seeds (resources {@code dev/ferry/fuzz/ParserFuzzTestInputs/<method>/}); {@code bin/fuzz
 * ParserFuzzTest#method SECONDS} fuzzes one for real. The only acceptable outcomes are success or
 * an {@link IOException} (a {@link MigrationStreamException} for bad bytes): any other exception,
 * a hang or an OOM is a finding.
 */
class ParserFuzzTest {
  private static final long MACHINE_BYTES = 1L << 20;

  /** A whole-machine stream loaded into a fresh, idle 1 MiB machine. */
  @FuzzTest(maxDuration = "2m")
  void machineLoad(byte[] data) {
    Machine machine = Machine.builder().memory(MACHINE_BYTES).program("idle").serial(new ByteArrayOutputStream()).build();
    try (MachineHost host = new MachineHost(machine)) {
      host.load(MigrationInput.of(data));
    } catch (IOException expected) {
      assertThat(expected.getMessage()).isNotBlank();
    }
  }

  /** The CPU's VMState description (v2 with its subsection), loaded at version 1 or 2. */
  @FuzzTest(maxDuration = "2m")
  void cpuVmstate(byte[] data) {
    if (data.length == 0) {
      return;
    }
    int version = 1 + (data[0] & 1);
    byte[] body = java.util.Arrays.copyOfRange(data, 1, data.length);
    VMStateEntry<CpuDevice> entry = VMStateEntry.of("cpu", 0, CpuDevice.VMSTATE, new CpuDevice(0, "idle"));
    try {
      entry.load(MigrationInput.of(body), version);
    } catch (IOException expected) {
      assertThat(expected.getMessage()).isNotBlank();
    }
  }

  /** The source's return-path reader, read until SHUT or an error. */
  @FuzzTest(maxDuration = "2m")
  void returnPath(byte[] data) {
    ReturnPath.Reader reader =
        new ReturnPath.Reader(
            MigrationInput.of(data),
            new ReturnPath.Handler() {
              @Override
              public void shut(long status) {}

              @Override
              public void requestPages(String blockName, long start, long length) {
                assertThat(blockName).isNotNull();
              }

              @Override
              public void resumeAck(long value) {}
            });
    try {
      int messages = 0;
      while (!reader.readOne()) {
        messages++;
        assertThat(messages).isLessThanOrEqualTo(data.length / 4);
      }
    } catch (IOException expected) {
      assertThat(expected.getMessage()).isNotBlank();
    }
  }
}
