package dev.ferry.vmstate;

import java.util.function.Function;

/** A subsection of a description: its own description and how to reach its object. */
record Subsection<T, S>(VMStateDescription<S> vmsd, Function<T, S> getter) {
  S target(T obj) {
    S s = getter.apply(obj);
    if (s == null) {
      throw new IllegalStateException("subsection '" + vmsd.name() + "': object is null");
    }
    return s;
  }
}
