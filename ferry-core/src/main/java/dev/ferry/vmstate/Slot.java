package dev.ferry.vmstate;

import java.util.function.BiPredicate;

/**
 * A field as declared in one description: its kind, when it is present (a since-version or an
 * exists-test, never both), its vmdesc name ({@code name[k]} when the name repeats) and whether
 * the vmdesc may describe its array by the first element only.
 */
record Slot<T>(
    FieldKind<T> kind,
    int sinceVersion,
    BiPredicate<T, Integer> existsIf,
    String descName,
    boolean compressible) {

  /** QEMU's rule: the exists-test decides when there is one, else {@code since <= version}. */
  boolean present(T obj, int version) {
    return existsIf != null ? existsIf.test(obj, version) : sinceVersion <= version;
  }
}
