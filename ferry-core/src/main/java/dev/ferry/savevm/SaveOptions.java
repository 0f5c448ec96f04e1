package dev.ferry.savevm;

import java.util.List;
import java.util.Objects;

/**
 * What one save or one load tells its live handlers, one value per type (e.g. the RAM options of a
 * migration: its statistics sink, xbzrle and the cache size; of a load: whether RAM starts zeroed).
 * A handler takes the value of the type it knows and its default when there is none, so the save
 * and load code needs no knowledge of any handler ({@link LiveStateHandler#openSave}, {@link
 * LiveStateHandler#openLoad}).
 */
public final class SaveOptions {
  /** No options: every handler uses its defaults (a snapshot save). */
  public static final SaveOptions NONE = new SaveOptions(List.of());

  private final List<Object> values;

  private SaveOptions(List<Object> values) {
    this.values = values;
  }

  /**
   * Options made of {@code values}, at most one per class.
   *
   * @throws IllegalArgumentException for two values of the same class
   */
  public static SaveOptions of(Object... values) {
    List<Object> list = List.of(values);
    for (int i = 0; i < list.size(); i++) {
      for (int j = 0; j < i; j++) {
        if (list.get(i).getClass() == list.get(j).getClass()) {
          throw new IllegalArgumentException("two save options of " + list.get(i).getClass().getSimpleName());
        }
      }
    }
    return new SaveOptions(list);
  }

  /** The value that is a {@code type}, or {@code fallback}. */
  public <T> T get(Class<T> type, T fallback) {
    Objects.requireNonNull(type, "type");
    for (Object v : values) {
      if (type.isInstance(v)) {
        return type.cast(v);
      }
    }
    return fallback;
  }

  @Override
  public String toString() {
    return "SaveOptions" + values;
  }
}
