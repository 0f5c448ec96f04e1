package dev.ferry.qmp;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.migration.MigrationStatus;
import java.util.Objects;

/**
 * An asynchronous QMP event. The backend emits these through the {@link MonitorEventSink} the
 * server gives it; the server stamps the time and sends the event to every negotiated client.
 */
public sealed interface MonitorEvent {
  /** The QMP event name, e.g. {@code MIGRATION}. */
  String name();

  /** The {@code data} member, or null when the event has none. */
  ObjectNode data();

  /** The machine was paused. */
  record Stop() implements MonitorEvent {
    @Override
    public String name() {
      return "STOP";
    }

    @Override
    public ObjectNode data() {
      return null;
    }
  }

  /** The machine resumed running. */
  record Resume() implements MonitorEvent {
    @Override
    public String name() {
      return "RESUME";
    }

    @Override
    public ObjectNode data() {
      return null;
    }
  }

  /** Migration status changed; QEMU emits it only while the {@code events} capability is on. */
  record Migration(MigrationStatus status) implements MonitorEvent {
    public Migration {
      Objects.requireNonNull(status, "status");
    }

    @Override
    public String name() {
      return "MIGRATION";
    }

    @Override
    public ObjectNode data() {
      return JsonNodeFactory.instance.objectNode().put("status", status.qapiName());
    }
  }

  /** A new precopy pass (dirty-bitmap sync) began; {@code pass} counts from 1. */
  record MigrationPass(long pass) implements MonitorEvent {
    @Override
    public String name() {
      return "MIGRATION_PASS";
    }

    @Override
    public ObjectNode data() {
      return JsonNodeFactory.instance.objectNode().put("pass", pass);
    }
  }

  /** Any other event (e.g. {@code SHUTDOWN}), with its data object or null. */
  record Other(String name, ObjectNode data) implements MonitorEvent {
    public Other {
      Objects.requireNonNull(name, "name");
    }
  }
}
