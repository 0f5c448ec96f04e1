package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.machine.CpuDevice;
import dev.ferry.machine.MachineType;
import dev.ferry.vmstate.VMStateDump;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VmstateCommandTest {
  @TempDir Path tmp;

  record Result(int exit, String out, String err) {}

  /** Runs {@code ferry args...} in this JVM with standard output and error captured. */
  static Result ferry(String... args) {
    Cli.Run r = Cli.ferry(args);
    return new Result(r.code(), r.out(), r.err());
  }

  private Path dump(String name, String... args) throws Exception {
    Result r = ferry(args);
    assertThat(r.exit()).as(r.err()).isZero();
    Path p = tmp.resolve(name);
    Files.writeString(p, r.out());
    return p;
  }

  @Test
  void dumpListsEveryDescribedSectionOfTheMachine() {
    Result r = ferry("vmstate", "dump", "--cpu-layout", "2", "--vcpus", "2", "--disk");
    assertThat(r.exit()).as(r.err()).isZero();
    VMStateDump d = VmstateJson.parse(r.out());
    assertThat(d.machine()).isEqualTo("ferry-1.1");
    assertThat(d.sections()).extracting(VMStateDump.Section::name)
        .contains("ferry-ram-layout", "cpu", "serial", "timer", "disk", "globalstate")
        .doesNotHaveDuplicates()
        .doesNotContain("ram");
    assertThat(d.section("cpu").versionId()).isEqualTo(2);
    assertThat(d.section("cpu").minimumVersionId()).isEqualTo(1);
    assertThat(r.out()).startsWith("{\n  \"vmschkmachine\": {\n    \"Name\": \"ferry-1.1\"\n  },");
  }

  @Test
  void dumpRoundTripsThroughTheParser() {
    for (String layout : new String[] {"1", "2"}) {
      String json = ferry("vmstate", "dump", "--cpu-layout", layout).out();
      VMStateDump parsed = VmstateJson.parse(json);
      assertThat(parsed.toJson()).isEqualTo(json);
      assertThat(parsed).isEqualTo(
          VmstateCommand.dumpOf(MachineType.newest(), CpuDevice.Layout.ofCode(Integer.parseInt(layout)), 1, null));
    }
  }

  @Test
  void dumpWritesToAFile() throws Exception {
    Path f = tmp.resolve("d.json");
    Result r = ferry("vmstate", "dump", "-o", f.toString());
    assertThat(r.exit()).isZero();
    assertThat(r.out()).isEmpty();
    assertThat(VmstateJson.parse(Files.readString(f)).section("cpu")).isNotNull();
  }

  @Test
  void olderCpuLayoutMigratesToNewerButNotBack() throws Exception {
    Path v1 = dump("v1.json", "vmstate", "dump", "--cpu-layout", "1");
    Path v2 = dump("v2.json", "vmstate", "dump", "--cpu-layout", "2");

    Result forward = ferry("vmstate", "check", v1.toString(), v2.toString());
    assertThat(forward.exit()).as(forward.out()).isZero();
    assertThat(forward.out()).startsWith("compatible");

    Result back = ferry("vmstate", "check", v2.toString(), v1.toString());
    assertThat(back.exit()).isEqualTo(1);
    assertThat(back.out()).contains("section 'cpu': source version 2 is newer than the destination's 1");
    String[] lines = back.out().split("\n");
    assertThat(lines[lines.length - 1]).startsWith((lines.length - 1) + " problem");

    Result same = ferry("vmstate", "check", v2.toString(), v2.toString());
    assertThat(same.exit()).isZero();
  }

  @Test
  void dumpDescribesTheMachineTypeAsked() throws Exception {
    Path old = dump("old.json", "vmstate", "dump", "--machine", "ferry-1.0");
    VMStateDump d = VmstateJson.parse(Files.readString(old));
    assertThat(d.machine()).isEqualTo("ferry-1.0");
    assertThat(d.section("cpu").versionId()).isEqualTo(1);
    assertThat(d.section("ferry-ram-layout")).isNotNull(); // loaded when a stream has it, never sent
    Result bad = ferry("vmstate", "dump", "--machine", "ferry-0.9");
    assertThat(bad.exit()).isEqualTo(1);
    assertThat(bad.err().strip()).isEqualTo("ferry vmstate dump: unknown machine type 'ferry-0.9' (known: ferry-1.0, ferry-1.1)");
  }

  /** check compares machine types by name: the older type's state loads into the newer, not back. */
  @Test
  void checkComparesMachineTypes() {
    Result forward = ferry("vmstate", "check", "ferry-1.0", "ferry-1.1");
    assertThat(forward.exit()).as(forward.out()).isZero();
    assertThat(forward.out()).startsWith("warning: checking different machine types: source 'ferry-1.0', destination 'ferry-1.1'\n")
        .contains("compatible");

    Result back = ferry("vmstate", "check", "ferry-1.1", "ferry-1.0");
    assertThat(back.exit()).isEqualTo(1);
    assertThat(back.out())
        .contains("section 'cpu': source version 2 is newer than the destination's 1")
        .contains("section 'cpu', description 'cpu': the destination has no subsections (the source has cpu/xregs, cpu/program)")
        .contains("section 'cpu', description 'cpu': field 'flags' does not exist on the destination");
    String[] lines = back.out().split("\n");
    assertThat(lines[lines.length - 1]).startsWith((lines.length - 2) + " problems");
  }

  @Test
  void malformedDumpIsOneLineAndExitTwo() throws Exception {
    Path good = dump("good.json", "vmstate", "dump");
    Path bad = tmp.resolve("bad.json");
    Files.writeString(bad, "{\"vmschkmachine\": {\"Name\": \"ferry-1.0\"}, \"cpu\": {");
    Result r = ferry("vmstate", "check", good.toString(), bad.toString());
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.out()).isEmpty();
    assertThat(r.err().strip()).startsWith("ferry vmstate check: ").contains("bad.json", "not JSON")
        .doesNotContain("\n", "Source");

    Files.writeString(bad, "{\"vmschkmachine\": {\"Name\": \"ferry-1.0\"}, \"cpu\": {\"Name\": \"cpu\","
        + " \"version_id\": 1, \"minimum_version_id\": 1, \"Description\": {\"name\": \"cpu\"}}}");
    r = ferry("vmstate", "check", bad.toString(), good.toString());
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.err().strip()).contains("cpu/Description: 'version_id' is missing").doesNotContain("\n");

    r = ferry("vmstate", "check", tmp.resolve("missing.json").toString(), good.toString());
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.err().strip()).contains("missing.json").doesNotContain("\n");
  }

  @Test
  void parserBoundsNesting() {
    String d = "{\"name\": \"x\", \"version_id\": 1, \"minimum_version_id\": 1}";
    for (int i = 0; i < VmstateJson.MAX_DEPTH + 1; i++) {
      d = "{\"name\": \"x\", \"version_id\": 1, \"minimum_version_id\": 1, \"Subsections\": [" + d + "]}";
    }
    String json = "{\"vmschkmachine\": {\"Name\": \"m\"}, \"x\": {\"Name\": \"x\", \"version_id\": 1,"
        + " \"minimum_version_id\": 1, \"Description\": " + d + "}}";
    assertThatThrownBy(() -> VmstateJson.parse(json))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("nested deeper than");
  }
}
