package dev.ferry.transport;

import java.io.IOException;
import java.nio.file.Path;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * exec: through a FIFO, so both children run at once: the source's {@code cat > FIFO} feeds the
 * destination's {@code cat FIFO}.
 */
class ExecTransportTest extends BaseTransportTestCase {
  private Path fifo;

  @BeforeEach
  void makeFifo() throws IOException, InterruptedException {
    fifo = tmp.resolve("stream.fifo");
    Process p = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    if (p.waitFor() != 0) {
      throw new IOException("mkfifo failed");
    }
  }

  @Override
  protected String listenUri() {
    return "exec:cat '" + fifo + "'";
  }

  @Override
  protected String connectUri(MigrationUri bound) {
    return "exec:cat > '" + fifo + "'";
  }

  @Override
  protected boolean supportsReturnPath() {
    return false;
  }

  @Override
  protected String unreachableConnectUri() {
    return "exec:echo no such target >&2; exit 3";
  }

  /** On Linux the stream goes through a FileChannel on a pipe of our own: one writev per gathering write. */
  @Test
  void streamRunsThroughAPipeOfOurOwn() throws IOException {
    if (!new java.io.File("/proc/self/fd").isDirectory()) {
      return; // the process streams carry it: covered by the conformance tests above
    }
    Path out = tmp.resolve("copy.bin");
    ExecMigrationChannel ch = ExecMigrationChannel.start("cat > '" + out + "'", true);
    try {
      assertThat(ch.streamsThroughPipe()).isTrue();
      ByteBuffer[] pieces = {ByteBuffer.wrap(new byte[] {1, 2}), ByteBuffer.allocateDirect(3).put(new byte[] {3, 4, 5}).flip()};
      long n = 0;
      while (pieces[1].hasRemaining()) {
        n += ch.write(pieces, 0, 2);
      }
      assertThat(n).isEqualTo(5);
    } finally {
      ch.close(); // waits for cat
    }
    assertThat(java.nio.file.Files.readAllBytes(out)).containsExactly(1, 2, 3, 4, 5);
  }
}
