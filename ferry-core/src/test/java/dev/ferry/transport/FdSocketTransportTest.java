package dev.ferry.transport;

import java.io.IOException;

/** fd: over the two ends of a socketpair made in this process (the in-process stand-in for inheritance). */
class FdSocketTransportTest extends BaseTransportTestCase {
  private int[] pair;

  @Override
  protected String listenUri() throws IOException {
    pair = InheritedFds.socketPair();
    return "fd:" + pair[1];
  }

  @Override
  protected String connectUri(MigrationUri bound) {
    return "fd:" + pair[0];
  }

  @Override
  protected boolean supportsReturnPath() {
    return true;
  }

  @Override
  protected String unreachableConnectUri() {
    return "fd:99999";
  }
}
