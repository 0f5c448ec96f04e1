package dev.ferry.transport;

class FileTransportTest extends BaseTransportTestCase {
  @Override
  protected String listenUri() {
    return "file:" + tmp.resolve("stream.mig");
  }

  @Override
  protected boolean streaming() {
    return false;
  }

  @Override
  protected boolean supportsReturnPath() {
    return false;
  }

  @Override
  protected String unreachableConnectUri() {
    return "file:" + tmp.resolve("no-such-dir").resolve("stream.mig");
  }
}
