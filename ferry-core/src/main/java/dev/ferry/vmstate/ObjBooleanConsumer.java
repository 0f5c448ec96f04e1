package dev.ferry.vmstate;

/** Sets a boolean on an object without boxing (the bool counterpart of {@link java.util.function.ObjIntConsumer}). */
@FunctionalInterface
public interface ObjBooleanConsumer<T> {
  void accept(T target, boolean value);
}
