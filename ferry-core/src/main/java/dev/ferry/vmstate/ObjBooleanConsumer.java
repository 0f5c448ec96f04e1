package dev.ferry.vmstate;

/**
 * Sets a boolean on an object without boxing (the bool counterpart of {@link
 * java.util.function.ObjIntConsumer}).
 *
 * @param <T> the object's type
 */
@FunctionalInterface
public interface ObjBooleanConsumer<T> {
  /** Sets {@code value} on {@code target}. */
  void accept(T target, boolean value);
}
