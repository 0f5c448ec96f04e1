package dev.ferry.transport;

class UnixTransportTest extends BaseTransportTestCase {
  @Override
  protected String listenUri() {
    return "unix:" + tmp.resolve("mig.sock");
  }

  @Override
  protected boolean supportsReturnPath() {
    return true;
  }

  @Override
  protected String unreachableConnectUri() {
    return "unix:" + tmp.resolve("nobody-listens.sock");
  }
}
