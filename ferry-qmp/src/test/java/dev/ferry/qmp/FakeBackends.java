package dev.ferry.qmp;

/** Gives tests in other packages the fake backend. */
public final class FakeBackends {
  private FakeBackends() {}

  public static MonitorBackend fake() {
    return new FakeMonitorBackend();
  }
}
