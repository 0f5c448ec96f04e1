package dev.ferry.cli.analyze;

import dev.ferry.ram.MultifdPageReader;
import dev.ferry.ram.RamBlockResolver;
import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.MultifdCompression;
import dev.ferry.stream.MultifdInit;
import dev.ferry.stream.MultifdPacket;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * The multifd channels of a QEMU 7.2 migration, one recorded connection file each (raw or gzip),
 * replayed against the main stream the way 7.2's destination does: at every RAM EOS of the main
 * stream each channel is read up to and including its next SYNC packet, its pages placed in RAM.
 *
 * <p>Opening reads every channel's 64-byte init message and checks it: magic and version, the same
 * UUID on every channel, and ids 0 … n-1 each once. Every error names the channel and its file.
 */
final class MultifdChannels implements AutoCloseable {
  /** One packet for the listing. */
  record Packet(long offset, long length, String text) {}

  /** One channel: its file, init message, reader and what was seen. */
  static final class Channel {
    final Path file;
    final MigrationInput in;
    final MultifdInit init;
    final MultifdPageReader reader;
    final MultifdPacket packet = new MultifdPacket();
    final List<Packet> packets = new ArrayList<>();
    long syncs;
    long duplicatePacketNums;

    Channel(Path file, MigrationInput in, MultifdInit init) {
      this.file = file;
      this.in = in;
      this.init = init;
      this.reader = new MultifdPageReader(init.id(), null);
    }

    String name() {
      return "multifd channel " + init.id() + " (" + file.getFileName() + ")";
    }
  }

  private final List<Channel> channels;
  private long syncs;

  private MultifdChannels(List<Channel> channels) {
    this.channels = channels;
  }

  /** Opens the files and reads their init messages; closes what it opened when one is bad. */
  static MultifdChannels open(List<Path> files) throws IOException {
    List<Channel> opened = new ArrayList<>();
    boolean ok = false;
    try {
      for (Path f : files) {
        MigrationInput in = new MigrationInput(open(f));
        MultifdInit init;
        try {
          init = MultifdInit.read(in);
        } catch (MigrationStreamException e) {
          in.close();
          throw named("multifd channel file " + f.getFileName(), e);
        }
        Channel c = new Channel(f, in, init);
        opened.add(c);
        Channel first = opened.getFirst();
        if (!init.sameUuid(first.init.uuid())) {
          throw new MigrationStreamException(String.format(
              "%s: multifd: received uuid '%s' and expected uuid '%s' for channel %d (the uuid of %s)", c.name(),
              init.uuidText(), first.init.uuidText(), init.id(), first.file.getFileName()), 8);
        }
        if (init.id() >= files.size()) {
          throw new MigrationStreamException(String.format(
              "%s: channel id %d, but only %d channel files were given (ids 0 to %d)", c.name(), init.id(),
              files.size(), files.size() - 1), 24);
        }
        for (Channel o : opened) {
          if (o != c && o.init.id() == init.id()) {
            throw new MigrationStreamException(String.format(
                "%s: multifd: received id '%d' already setup' by %s", c.name(), init.id(), o.file.getFileName()), 24);
          }
        }
      }
      opened.sort(Comparator.comparingInt(c -> c.init.id()));
      ok = true;
      return new MultifdChannels(opened);
    } finally {
      if (!ok) {
        for (Channel c : opened) {
          close(c);
        }
      }
    }
  }

  private static ReadableByteChannel open(Path f) throws IOException {
    if (Analysis.isGzip(f)) {
      InputStream gz = new GZIPInputStream(Files.newInputStream(f), 1 << 16);
      return Channels.newChannel(gz);
    }
    return FileChannel.open(f, StandardOpenOption.READ);
  }

  /** The same error with the channel named in front (the channel offset stays at the end). */
  private static MigrationStreamException named(String who, MigrationStreamException e) {
    return new ChannelException(who + ": " + e.what(), e.offset(), e);
  }

  /**
   * An error in a channel file: its offset is the channel's, so the main stream's section context
   * (added as the error leaves the RAM section) would mislead and is not taken.
   */
  static final class ChannelException extends MigrationStreamException {
    ChannelException(String what, long offset, Throwable cause) {
      super(what, offset, cause);
    }

    @Override
    public MigrationStreamException inSection(String idstr, long instance) {
      return this;
    }
  }

  /**
   * The main stream's RAM EOS at {@code mainOffset}: reads every channel up to and including its next
   * SYNC packet, placing the pages in {@code blocks}.
   */
  void sync(RamBlockResolver blocks, long mainOffset) throws IOException {
    for (Channel c : channels) {
      try {
        readToSync(c, blocks, mainOffset);
      } catch (MigrationStreamException e) {
        throw named(c.name(), e);
      }
      MultifdCompression m = c.reader.method();
      for (Channel o : channels) {
        if (o.reader.method() != null && m != null && o.reader.method() != m) {
          throw new ChannelException(String.format(
              "%s: compression %s, but %s uses %s", c.name(), m.qmpName(), o.name(), o.reader.method().qmpName()),
              c.packet.streamOffset(), null);
        }
      }
    }
    syncs++;
  }

  private void readToSync(Channel c, RamBlockResolver blocks, long mainOffset) throws IOException {
    long lastNum = -1;
    while (true) {
      if (!c.packet.read(c.in)) {
        throw new MigrationStreamException(String.format(
            "the channel ends before its SYNC for the main stream's RAM EOS %d (main stream offset %d)",
            syncs + 1, mainOffset), c.in.position());
      }
      MultifdPacket p = c.packet;
      c.reader.readPages(p, c.in, blocks);
      if (p.packetNum() == lastNum) {
        c.duplicatePacketNums++;
      }
      lastNum = p.packetNum();
      c.packets.add(new Packet(p.streamOffset(), c.in.position() - p.streamOffset(), p.toString()));
      if (p.sync()) {
        c.syncs++;
        return;
      }
    }
  }

  /**
   * After the main stream's end: what follows a channel's last SYNC may only be the empty packet 7.2
   * sends when its sync overtook a page batch (no pages, no SYNC); anything else is an error.
   */
  void finish() throws IOException {
    for (Channel c : channels) {
      try {
        while (c.packet.read(c.in)) {
          MultifdPacket p = c.packet;
          if (p.normalPages() > 0 || p.sync()) {
            throw new MigrationStreamException(String.format(
                "%s after the SYNC of the main stream's last RAM EOS (%d EOS)", p, syncs), p.streamOffset());
          }
          c.packets.add(new Packet(p.streamOffset(), c.in.position() - p.streamOffset(), p.toString()));
        }
      } catch (MigrationStreamException e) {
        throw named(c.name(), e);
      }
    }
  }

  List<Channel> channels() {
    return channels;
  }

  /** RAM EOS sync points replayed. */
  long syncs() {
    return syncs;
  }

  /** One summary line per channel. */
  String summary(Channel c) {
    long bytes = c.packets.stream().mapToLong(Packet::length).sum() + MultifdInit.LENGTH;
    return String.format("%s: id %d, uuid %s, %d packets (%d SYNC), %d pages, %d bytes, compression %s", c.name(),
        c.init.id(), c.init.uuidText(), c.packets.size(), c.syncs, c.reader.pages(), bytes,
        c.reader.method() == null ? "unknown (no pages)" : c.reader.method().qmpName());
  }

  @Override
  public void close() {
    for (Channel c : channels) {
      close(c);
    }
  }

  private static void close(Channel c) {
    c.reader.close();
    try {
      c.in.close();
    } catch (IOException e) {
      // read-only file: nothing to lose
    }
  }
}
