package dev.ferry.qmp;

/**
 * Where a backend sends events. Thread-safe, never blocks on a client: events are queued per
 * connection and written by that connection's writer.
 */
@FunctionalInterface
public interface MonitorEventSink {
  void emit(MonitorEvent event);
}
