package dev.ferry.transport;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;

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
}
