package dev.ferry.cli.analyze;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.machine.Machine;
import dev.ferry.machine.MachineHost;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.migration.OutgoingMigration;
import dev.ferry.ram.RamBlock;
import dev.ferry.testing.Incoming;
import dev.ferry.transport.ForwardingMigrationChannel;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.Transports;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Ferry's own multifd migration, every connection recorded on the source as it was written, decoded
 * by {@code ferry analyze MAIN --multifd-channel ...}: the channels replayed at each RAM EOS rebuild
 * exactly the RAM of the stopped source.
 */
@Timeout(120)
class FerryMultifdAnalyzeTest {
  @TempDir Path tmp;

  /** Keeps every byte written through it. */
  static final class Recording extends ForwardingMigrationChannel {
    final ByteArrayOutputStream written = new ByteArrayOutputStream();

    Recording(MigrationChannel raw) {
      super(raw);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      return raw.read(dst);
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
      return (int) write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public long write(ByteBuffer[] srcs, int off, int len) throws IOException {
      int[] before = new int[len];
      for (int i = 0; i < len; i++) {
        before[i] = srcs[off + i].position();
      }
      long n = raw.write(srcs, off, len);
      synchronized (written) {
        for (int i = 0; i < len; i++) {
          ByteBuffer b = srcs[off + i];
          for (int p = before[i]; p < b.position(); p++) {
            written.write(b.get(p));
          }
        }
      }
      return n;
    }

    byte[] bytes() {
      synchronized (written) {
        return written.toByteArray();
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"none", "zstd"})
  void ferrysMultifdConnectionsRebuildTheSourceRam(String compression) throws Exception {
    List<Recording> channels = new ArrayList<>();
    Recording main;
    List<RamBlock> blocks;
    try (MachineHost src = new MachineHost(Machine.builder().memory(16 << 20).program("fill").build());
        MachineHost dst = new MachineHost(Machine.builder().memory(16 << 20).program("fill").build())) {
      for (MachineHost h : List.of(src, dst)) {
        h.migration().setCapabilities(Map.of(MigrationCapability.MULTIFD, true));
        h.migration().setParameters(Map.of("multifd-channels", 2L, "multifd-compression", compression));
      }
      src.machine().resume();
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (src.machine().cpu(0).pc() != 2 && System.nanoTime() < until) {
        Thread.sleep(5); // the fill is done: RAM full of random pages
      }
      Incoming incoming = Incoming.listen(dst, "tcp:127.0.0.1:0", FerryPostcopyAnalyzeTest.THREADS);
      String uri = incoming.uri();
      main = new Recording(Transports.connect(uri));
      Recording first = main;
      src.migration().beforeStart(o -> o.multifdConnector(() -> {
        Recording r = new Recording(Transports.connect(uri));
        channels.add(r);
        return r;
      }));
      OutgoingMigration out = src.migration().migrate(() -> first);
      assertThat(out.await(60, TimeUnit.SECONDS)).as(String.valueOf(src.migration().outgoingState().errorDesc()))
          .isEqualTo(MigrationStatus.COMPLETED);
      incoming.await(60, TimeUnit.SECONDS);
      blocks = src.machine().ramBlocks();
      Path mainFile = tmp.resolve("main.mig");
      Files.write(mainFile, main.bytes());
      List<String> args = new ArrayList<>(List.of("analyze", mainFile.toString()));
      for (int i = channels.size() - 1; i >= 0; i--) { // any order: the id byte decides
        Path f = tmp.resolve("channel" + i + ".bin");
        Files.write(f, channels.get(i).bytes());
        args.addAll(List.of("--multifd-channel", f.toString()));
      }
      Path extracted = tmp.resolve("ram");
      args.addAll(List.of("--extract", extracted.toString()));
      AnalyzeCommandTest.Run r = AnalyzeCommandTest.ferry(args.toArray(String[]::new));
      assertThat(r.exit()).as(r.err()).isZero();
      assertThat(channels).hasSize(2);
      for (RamBlock b : blocks) {
        byte[] got = Files.readAllBytes(extracted.resolve(b.name()));
        assertThat(MemorySegment.ofArray(got).mismatch(b.memory())).as("first differing byte of block " + b.name()).isEqualTo(-1);
      }
    }
  }
}
