package dev.ferry.qmp.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.machine.MemoryDigest;
import dev.ferry.machine.RunState;
import dev.ferry.machine.SnapshotStore;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry-memory-digest} and {@code info digest} over a real machine. */
@Timeout(60)
class MemoryDigestCommandTest {
  @TempDir Path dir;

  private MachineHost host(String program) {
    return new MachineHost(Machine.builder().memory(4 << 20).program(program).serial(new ByteArrayOutputStream()).build());
  }

  @Test
  void digestOverQmpHasTheDocumentedShapeAndRoundTrips() throws Exception {
    try (MachineHost h = host("stress")) {
      QmpDispatcher qmp = new QmpDispatcher(new EngineBackend(h, new SnapshotStore(dir, h)));
      h.machine().resume();
      JsonNode r = qmp.execute("ferry-memory-digest", null);
      assertThat(h.machine().runState()).as("running again afterwards").isEqualTo(RunState.RUNNING);
      assertThat(r.path("algorithm").asText()).isEqualTo("crc32c-4k");
      assertThat(r.path("ram").asText()).matches("[0-9a-f]{16}");
      assertThat(r.path("devices").asText()).matches("[0-9a-f]{16}");
      assertThat(r.path("bytes").asLong()).isGreaterThan(4L << 20);
      assertThat(r.path("blocks")).hasSize(1);
      JsonNode b = r.path("blocks").get(0);
      assertThat(b.path("name").asText()).isEqualTo("ram");
      assertThat(b.path("length").asLong()).isEqualTo(4L << 20);
      assertThat(b.path("digest").asText()).matches("[0-9a-f]{16}");
      assertThat(b.has("pages")).isFalse();

      h.machine().pause();
      MemoryDigest direct = h.memoryDigest();
      JsonNode withPages = qmp.execute("ferry-memory-digest", JsonNodeFactory.instance.objectNode().put("pages", true));
      assertThat(withPages.path("blocks").get(0).path("pages")).hasSize(1024);
      MemoryDigest back = MemoryDigestInfo.fromJson(withPages);
      assertThat(back).isEqualTo(direct);
      assertThat(back.pageDigests("ram")).isEqualTo(direct.pageDigests("ram"));

      // one changed byte: named by block and page through the JSON form
      h.machine().ramBlocks().getFirst().memory().set(ValueLayout.JAVA_BYTE, 0x3000 + 9, (byte) 0x77);
      MemoryDigest changed =
          MemoryDigestInfo.fromJson(qmp.execute("ferry-memory-digest", JsonNodeFactory.instance.objectNode().put("pages", true)));
      assertThat(back.firstDifference(changed)).hasValueSatisfying(s -> assertThat(s).startsWith("block 'ram' differs first at page 0x3000"));

      String text = qmp.hmp().execute("info digest");
      assertThat(text).startsWith("digest (crc32c-4k): ram " + changed.ram() + ", devices " + changed.devices());
      assertThat(text).contains("  block ram: 4194304 bytes, " + changed.blocks().getFirst().digest() + "\n");
      assertThat(text).contains("  section cpu.0: ");
      assertThat(qmp.hmp().execute("info digest -p")).contains("    0x0: " + String.format("%08x", changed.pageDigests("ram")[0]));
    }
  }

  @Test
  void pageDigestsComeInWindowsOfOneBlockAndAreCapped() throws Exception {
    try (MachineHost h = host("idle");
        MachineHost big = new MachineHost(Machine.builder().memory((4L << 30) + 4096).program("idle").build())) {
      QmpDispatcher qmp = new QmpDispatcher(new EngineBackend(h, new SnapshotStore(dir, h)));
      h.machine().ramBlocks().getFirst().memory().set(ValueLayout.JAVA_BYTE, 0x5000, (byte) 1);
      int[] all = h.memoryDigest().pageDigests("ram");
      var f = JsonNodeFactory.instance;
      JsonNode w = qmp.execute("ferry-memory-digest", f.objectNode().put("pages", true).put("block", "ram").put("offset", 0x4000).put("length", 0x3000));
      JsonNode b = w.path("blocks").get(0);
      assertThat(b.path("pages-offset").asLong()).isEqualTo(0x4000);
      assertThat(MemoryDigestInfo.pages(w, "ram")).containsExactly(all[4], all[5], all[6]);
      assertThat(MemoryDigestInfo.fromJson(w).pageDigests("ram")).as("a window is not a whole block").isNull();
      JsonNode rest = qmp.execute("ferry-memory-digest", f.objectNode().put("pages", true).put("block", "ram").put("offset", 0x3ff000));
      assertThat(MemoryDigestInfo.pages(rest, "ram")).containsExactly(all[1023]);

      assertThatThrownBy(() -> qmp.execute("ferry-memory-digest", f.objectNode().put("pages", true).put("block", "vram")))
          .hasMessageContaining("no RAM block 'vram'");
      assertThatThrownBy(() -> qmp.execute("ferry-memory-digest", f.objectNode().put("pages", true).put("block", "ram").put("offset", 100)))
          .hasMessageContaining("must be 4 KiB aligned and inside its 4194304 bytes");
      assertThatThrownBy(() -> qmp.execute("ferry-memory-digest", f.objectNode().put("block", "ram")))
          .hasMessageContaining("need \"pages\": true");

      QmpDispatcher bigQmp = new QmpDispatcher(new EngineBackend(big, new SnapshotStore(dir, big)));
      assertThatThrownBy(() -> bigQmp.execute("ferry-memory-digest", f.objectNode().put("pages", true)))
          .hasMessageContaining("1048577 page digests asked for, at most 1048576 a reply");
      JsonNode tail = bigQmp.execute("ferry-memory-digest", f.objectNode().put("pages", true).put("block", "ram").put("offset", 4L << 30));
      assertThat(MemoryDigestInfo.pages(tail, "ram")).containsExactly(dev.ferry.ram.RamDigest.ZERO_PAGE_CRC);
    }
  }

  @Test
  void refusedDuringAnIncomingMigration() throws Exception {
    try (MachineHost h = host("idle")) {
      QmpDispatcher qmp = new QmpDispatcher(new EngineBackend(h, new SnapshotStore(dir, h)));
      h.machine().stop(RunState.INMIGRATE);
      assertThatThrownBy(() -> qmp.execute("ferry-memory-digest", null))
          .isInstanceOf(QmpError.class)
          .hasMessageContaining("Guest is waiting for an incoming migration");
    }
  }
}
