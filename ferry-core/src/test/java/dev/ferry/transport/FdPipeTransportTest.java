package dev.ferry.transport;

import java.io.IOException;

/** fd: over a pipe: no return path, and shutdown goes through the wake-up pipe. */
class FdPipeTransportTest extends BaseTransportTestCase {
  private int[] pipe;

  @Override
  protected String listenUri() throws IOException {
    pipe = InheritedFds.pipe();
    return "fd:" + pipe[0];
  }

  @Override
  protected String connectUri(MigrationUri bound) {
    return "fd:" + pipe[1];
  }

  @Override
  protected boolean supportsReturnPath() {
    return false;
  }

  @Override
  protected String unreachableConnectUri() {
    return "fd:99999";
  }
}
