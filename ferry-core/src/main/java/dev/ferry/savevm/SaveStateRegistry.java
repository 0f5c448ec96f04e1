package dev.ferry.savevm;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * The ordered list of everything that is saved and loaded (QEMU's savevm_state.handlers): device
 * entries and live handlers, each with a section id assigned at registration. Order: priority
 * (highest first), then registration order; every phase walks this order, so load order matches
 * save order.
 */
public final class SaveStateRegistry {
  /** One registered item and its section id. */
  public sealed interface Registration {
    long sectionId();

    String idstr();

    int instanceId();

    int priority();
  }

  public record Device(long sectionId, SaveStateEntry entry) implements Registration {
    public String idstr() {
      return entry.idstr();
    }

    public int instanceId() {
      return entry.instanceId();
    }

    public int priority() {
      return entry.priority();
    }
  }

  public record Live(long sectionId, LiveStateHandler handler) implements Registration {
    public String idstr() {
      return handler.idstr();
    }

    public int instanceId() {
      return handler.instanceId();
    }

    public int priority() {
      return handler.priority();
    }
  }

  private final List<Registration> items = new ArrayList<>();
  private long nextSectionId;

  public synchronized Device register(SaveStateEntry entry) {
    checkUnique(entry.idstr(), entry.instanceId());
    Device d = new Device(nextSectionId++, entry);
    add(d);
    return d;
  }

  public synchronized Live register(LiveStateHandler handler) {
    checkUnique(handler.idstr(), handler.instanceId());
    Live l = new Live(nextSectionId++, handler);
    add(l);
    return l;
  }

  private void add(Registration r) {
    items.add(r);
    items.sort(Comparator.comparingInt(Registration::priority).reversed()); // stable
  }

  private void checkUnique(String idstr, int instanceId) {
    Objects.requireNonNull(idstr, "idstr");
    if (idstr.isEmpty() || idstr.length() > 255) {
      throw new IllegalArgumentException("idstr must be 1..255 chars: '" + idstr + "'");
    }
    if (find(idstr, instanceId) != null) {
      throw new IllegalArgumentException("'" + idstr + "' instance " + instanceId + " is already registered");
    }
  }

  /** The instance id QEMU's "any" picks: one above the highest used for {@code idstr}, from 0. */
  public synchronized int nextInstanceId(String idstr) {
    int next = 0;
    for (Registration r : items) {
      if (r.idstr().equals(idstr)) {
        next = Math.max(next, r.instanceId() + 1);
      }
    }
    return next;
  }

  /** The registration for (idstr, instance), or null. */
  public synchronized Registration find(String idstr, long instanceId) {
    for (Registration r : items) {
      if (r.idstr().equals(idstr) && r.instanceId() == instanceId) {
        return r;
      }
    }
    return null;
  }

  /** Everything, in save/load order. */
  public synchronized List<Registration> all() {
    return List.copyOf(items);
  }

  public synchronized List<Device> devices() {
    return items.stream().filter(Device.class::isInstance).map(Device.class::cast).toList();
  }

  public synchronized List<Live> live() {
    return items.stream().filter(Live.class::isInstance).map(Live.class::cast).toList();
  }
}
