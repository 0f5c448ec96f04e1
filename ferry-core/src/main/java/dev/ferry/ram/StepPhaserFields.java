package dev.ferry.ram;

/**
 * The epochs of {@link StepPhaser}, each on cache lines of its own: 128 bytes of padding before,
 * between and after them (two lines, as the adjacent-line prefetcher pulls pairs). HotSpot lays out
 * a superclass's fields before a subclass's, so the chain below fixes the order.
 */
@SuppressWarnings("unused") // the padding is never read
final class StepPhaserFields {
  private StepPhaserFields() {}

  abstract static class Pad0 {
    long p00, p01, p02, p03, p04, p05, p06, p07, p08, p09, p0a, p0b, p0c, p0d, p0e, p0f;
  }

  abstract static class Start extends Pad0 {
    volatile long startEpoch;
  }

  abstract static class Pad1 extends Start {
    long p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p1a, p1b, p1c, p1d, p1e, p1f;
  }

  abstract static class EvenEnd extends Pad1 {
    volatile long evenEndEpoch;
  }

  abstract static class Pad2 extends EvenEnd {
    long p20, p21, p22, p23, p24, p25, p26, p27, p28, p29, p2a, p2b, p2c, p2d, p2e, p2f;
  }

  abstract static class OddEnd extends Pad2 {
    volatile long oddEndEpoch;
  }

  abstract static class Pad3 extends OddEnd {
    long p30, p31, p32, p33, p34, p35, p36, p37, p38, p39, p3a, p3b, p3c, p3d, p3e, p3f;
  }
}
