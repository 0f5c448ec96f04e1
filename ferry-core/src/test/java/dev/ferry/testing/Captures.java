package dev.ferry.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.GZIPInputStream;

/** The real QEMU 7.2 captures kept in test resources ({@code qemu-streams/}). */
public final class Captures {
  /** Every capture name. */
  public static final List<String> ALL =
      List.of(
          "pc-256M",
          "pc-256M-run",
          "pc-256M-legacy-nocfg-nofooter",
          "pc-256M-postcopy-advise",
          "pc-256M-dirty-xbzrle",
          "pc-32M-block",
          "pc-32M-block-zero");

  /** Captures with block migration (they have disks.sha256). */
  public static final List<String> BLOCK = List.of("pc-32M-block", "pc-32M-block-zero");

  /** Captures that QEMU's analyzer could decode (they have state.json). */
  public static final List<String> ANALYZABLE =
      List.of("pc-256M", "pc-256M-run", "pc-256M-legacy-nocfg-nofooter");

  private Captures() {}

  public static InputStream open(String resource) {
    InputStream in = Captures.class.getResourceAsStream("/qemu-streams/" + resource);
    if (in == null) {
      throw new IllegalArgumentException("no test resource qemu-streams/" + resource);
    }
    return in;
  }

  /** The decompressed stream of capture {@code name}. */
  public static byte[] stream(String name) {
    try (InputStream in = new GZIPInputStream(open(name + ".mig.gz"))) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * One recorded connection of the QEMU 7.2 multifd captures ({@code qemu-streams/multifd/}),
   * decompressed: {@code tag} none, zlib or zstd; {@code conn} 0 (main stream), 1 or 2 (channels).
   */
  public static byte[] multifd(String tag, int conn) {
    try (InputStream in = new GZIPInputStream(open("multifd/mf-" + tag + "-conn" + conn + ".bin.gz"))) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A side file of capture {@code name}, e.g. {@code text(name, "state.json")}. */
  public static String text(String name, String suffix) {
    return new String(bytes(name, suffix), StandardCharsets.UTF_8);
  }

  public static byte[] bytes(String name, String suffix) {
    try (InputStream in = open(name + "." + suffix)) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
