package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.savevm.CommandListener;
import dev.ferry.savevm.StateLoader;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.testing.ExactState;
import dev.ferry.testing.Incoming;
import dev.ferry.vmstate.VMStateCompat;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 9 items 2 and 5: versioned machine types. A newer Ferry migrates to an older one when it
 * runs the older type; with the newer type the older side refuses the stream, naming the types,
 * and the vmstate check of the two types' dumps names the device differences behind it.
 */
@Timeout(120)
class MachineTypeTest {
  @TempDir Path dir;

  private static MachineHost host(MachineType type, String program) {
    return host(type, program, 8 << 20);
  }

  private static MachineHost host(MachineType type, String program, long memoryBytes) {
    return new MachineHost(
        Machine.builder().machineType(type).memory(memoryBytes).program(program).serial(new ByteArrayOutputStream()).build());
  }

  @Test
  void typesAreKnownByNameAndTheNewestIsTheDefault() {
    assertThat(MachineType.names()).containsExactly("ferry-1.0", "ferry-1.1");
    assertThat(MachineType.newest()).isEqualTo(MachineType.FERRY_1_1);
    assertThat(MachineType.FERRY_1_1.isDefault()).isTrue();
    assertThat(MachineType.FERRY_1_0.isDefault()).isFalse();
    assertThat(MachineType.byName("ferry-1.0")).isSameAs(MachineType.FERRY_1_0);
    assertThatThrownBy(() -> MachineType.byName("pc-i440fx-7.2"))
        .hasMessage("unknown machine type 'pc-i440fx-7.2' (known: ferry-1.0, ferry-1.1)");
    try (Machine m = Machine.builder().memory(64 << 10).build()) {
      assertThat(m.machineType()).isEqualTo(MachineType.newest());
    }
  }

  @Test
  void eachTypePinsItsDevicesVersions() {
    try (MachineHost old = host(MachineType.FERRY_1_0, "idle");
        MachineHost cur = host(MachineType.FERRY_1_1, "idle")) {
      assertThat(old.configuration().machineType()).isEqualTo("ferry-1.0");
      assertThat(old.machine().cpu(0).layout()).isEqualTo(CpuDevice.Layout.V1);
      assertThat(old.vmstateDump().section("cpu").versionId()).isEqualTo(1);
      assertThat(old.vmstateDump().section("cpu").description().subsections()).isEmpty();
      // registered (a stream that has it is loaded and checked) but never sent
      assertThat(old.vmstateDump().section("ferry-ram-layout")).isNotNull();
      assertThat(old.registry().find("ferry-ram-layout", 0)).isNotNull();

      assertThat(cur.configuration().machineType()).isEqualTo("ferry-1.1");
      assertThat(cur.machine().cpu(0).layout()).isEqualTo(CpuDevice.Layout.V2);
      assertThat(cur.vmstateDump().section("cpu").versionId()).isEqualTo(2);
      assertThat(cur.vmstateDump().section("cpu").description().subsections())
          .extracting(d -> d.name()).containsExactly("cpu/xregs", "cpu/program");
      assertThat(cur.vmstateDump().section("ferry-ram-layout")).isNotNull();
    }
  }

  /** The first release's snapshots (golden, type ferry-1.0) load into a ferry-1.0 machine as it comes. */
  @Test
  void theFirstReleasesSnapshotLoadsIntoItsType() throws Exception {
    Path file = dir.resolve("cpu-v1-registers.ferry");
    try (InputStream in = MachineTypeTest.class.getResourceAsStream("/golden/cpu-v1-registers.ferry")) {
      Files.copy(in, file);
    }
    try (MachineHost h = host(MachineType.FERRY_1_0, "idle", GoldenCpuV1Generator.MEMORY_BYTES)) {
      StateLoader loader = h.load(file);
      assertThat(loader.receivedConfiguration().machineType()).isEqualTo("ferry-1.0");
      assertThat(h.machine().cpu(0).pc()).isEqualTo(0x1234);
      assertThat(h.machine().cpu(0).reg(3)).isEqualTo(GoldenCpuV1Generator.goldenReg(3));
    }
    try (MachineHost h = host(MachineType.FERRY_1_1, "idle", GoldenCpuV1Generator.MEMORY_BYTES)) {
      assertThatThrownBy(() -> h.load(file))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("Machine type received is 'ferry-1.0' and local is 'ferry-1.1'");
    }
  }

  /** What a source of the newer build sends with {@code --machine ferry-1.0}: the first release's sections only. */
  @Test
  void aNewerBuildRunningTheOlderTypeSavesWhatTheOlderBuildLoads() throws Exception {
    Path file = dir.resolve("old.ferry");
    try (MachineHost src = host(MachineType.FERRY_1_0, "stress")) {
      src.machine().resume();
      awaitSteps(src.machine(), 20);
      src.save(file);
    }
    String bytes = new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1);
    assertThat(bytes).contains("ferry-1.0").doesNotContain("ferry-ram-layout").doesNotContain("cpu/");
    // an older build: knows ferry-1.0 only, cpu layout v1 (what the goldens were written by)
    try (MachineHost old = host(MachineType.FERRY_1_0, "stress")) {
      StateLoader loader = old.load(file);
      assertThat(loader.loadedSections()).containsExactlyInAnyOrder("ram 0", "cpu 0", "serial 0", "timer 0", "globalstate 0");
      assertThat(StressCheck.check(old.machine()).passed()).isTrue();
    }
  }

  @Test
  void newerToOlderMigratesWhenTheOlderTypeIsChosen() throws Exception {
    try (MachineHost src = host(MachineType.FERRY_1_0, "stress");
        MachineHost dst = host(MachineType.FERRY_1_0, "stress")) {
      src.machine().resume();
      awaitSteps(src.machine(), 50);
      Result r = migrate(src, dst);
      assertThat(r.failure()).isNull();
      assertThat(r.status()).as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      ExactState.assertSame(src, dst);
      assertThat(StressCheck.check(dst.machine()).passed()).isTrue();
      assertThat(dst.machine().cpu(0).layout()).isEqualTo(CpuDevice.Layout.V1);
    }
  }

  @Test
  void newerToOlderIsRefusedWithTheNewerTypeNamingTheReason() throws Exception {
    try (MachineHost src = host(MachineType.FERRY_1_1, "stress");
        MachineHost dst = host(MachineType.FERRY_1_0, "stress")) {
      src.machine().resume();
      awaitSteps(src.machine(), 20);
      Result r = migrate(src, dst);
      assertThat(r.status()).isEqualTo(MigrationStatus.FAILED);
      assertThat(r.failure()).isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("Machine type received is 'ferry-1.1' and local is 'ferry-1.0'");
      assertThat(src.machine().isRunning()).as("the source runs on").isTrue();
      assertThat(dst.machine().runState()).isNotEqualTo(RunState.RUNNING);
      // the reason the type is refused: the device state of ferry-1.1 does not load into ferry-1.0
      List<String> why = VMStateCompat.check(src.vmstateDump(), dst.vmstateDump());
      assertThat(why)
          .anyMatch(p -> p.contains("'cpu'") && p.contains("version 2") && p.contains("1"))
          .anyMatch(p -> p.contains("field 'flags' does not exist on the destination"))
          .anyMatch(p -> p.contains("no subsections (the source has cpu/xregs, cpu/program)"))
          .noneMatch(p -> p.contains("ferry-ram-layout"));
      // and the other way round the device state is compatible (a newer build loads the older layout)
      assertThat(VMStateCompat.check(dst.vmstateDump(), src.vmstateDump())).isEmpty();
    }
  }

  /** An older build that does not know the newer type at all names the types it knows. */
  @Test
  void anUnknownTypeIsRefusedListingTheKnownOnes() throws Exception {
    Path file = dir.resolve("new.ferry");
    try (MachineHost src = host(MachineType.FERRY_1_1, "idle")) {
      src.save(file);
    }
    byte[] stream = Files.readAllBytes(file);
    try (MachineHost older = host(MachineType.FERRY_1_0, "idle")) {
      assertThatThrownBy(
              () -> StateLoader.load(older.registry(), MigrationInput.of(stream), StreamReader.Options.DEFAULT,
                  older.configuration(), List.of("ferry-1.0"), dev.ferry.savevm.SaveOptions.NONE, CommandListener.NONE))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("unknown machine type 'ferry-1.1' in the stream (known: ferry-1.0; local is 'ferry-1.0')");
    }
    // this build, a stream of a type nobody made
    String text = new String(stream, StandardCharsets.ISO_8859_1).replace("ferry-1.1", "ferry-7.7");
    Path odd = dir.resolve("odd.ferry");
    Files.write(odd, text.getBytes(StandardCharsets.ISO_8859_1));
    try (MachineHost h = host(MachineType.FERRY_1_1, "idle")) {
      assertThatThrownBy(() -> h.load(odd))
          .isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("unknown machine type 'ferry-7.7' in the stream (known: ferry-1.0, ferry-1.1; local is 'ferry-1.1')")
          .message().doesNotContain("\n");
    }
  }

  /** A newer build's type, unknown here, over a live migration: refused naming the known ones. */
  @Test
  void aLiveMigrationOfAnUnknownTypeIsRefusedListingTheKnownOnes() throws Exception {
    MachineType future = new MachineType("ferry-9.9", CpuDevice.Layout.V2, true, "a later build's type");
    try (MachineHost src = host(future, "stress");
        MachineHost dst = host(MachineType.FERRY_1_1, "stress")) {
      src.machine().resume();
      awaitSteps(src.machine(), 20);
      Result r = migrate(src, dst);
      assertThat(r.status()).isEqualTo(MigrationStatus.FAILED);
      assertThat(r.failure()).isInstanceOf(MigrationStreamException.class)
          .hasMessageContaining("unknown machine type 'ferry-9.9' in the stream (known: ferry-1.0, ferry-1.1; local is 'ferry-1.1')");
      assertThat(dst.migration().incomingState().errorDesc()).contains("unknown machine type 'ferry-9.9'");
      assertThat(src.machine().isRunning()).isTrue();
    }
  }

  private record Result(MigrationStatus status, Throwable failure) {}

  private Result migrate(MachineHost src, MachineHost dst) throws Exception {
    String uri = "unix:" + dir.resolve("mig.sock");
    Incoming incoming = Incoming.listen(dst, uri);
    src.migration().setCapabilities(Map.of(MigrationCapability.RETURN_PATH, true));
    OutgoingMigration out = src.migration().migrate(uri);
    MigrationStatus end = out.await(60, TimeUnit.SECONDS);
    return new Result(end, incoming.failure(60, TimeUnit.SECONDS));
  }

  private static void awaitSteps(Machine m, long steps) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (m.cpu(0).steps() < steps && System.nanoTime() < deadline) {
      Thread.sleep(2);
    }
    assertThat(m.cpu(0).steps()).isGreaterThanOrEqualTo(steps);
  }
}
