package dev.ferry.cli.analyze;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationStreamException;
import dev.ferry.stream.ReturnPathMessage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Decodes a recorded return path (destination to source, QEMU 7.2 MIG_RP_MSG_*) into a list of
 * messages: SHUT, PONG, REQ_PAGES, REQ_PAGES_ID, RECV_BITMAP (with its unframed bitmap blob) and
 * RESUME_ACK. The file may end after any whole message; anything else is a one-line error.
 */
public final class ReturnPathDecoder {
  /** One message: its offset, type and a description of its payload. */
  public record Message(long offset, ReturnPathMessage type, String text) {}

  private ReturnPathDecoder() {}

  public static List<Message> decode(byte[] bytes) throws IOException {
    MigrationInput in = MigrationInput.of(bytes);
    List<Message> out = new ArrayList<>();
    String lastBlock = null;
    while (!in.atEnd()) {
      long at = in.position();
      int type = in.readBe16();
      int len = in.readBe16();
      ReturnPathMessage m = ReturnPathMessage.fromCodeOrNull(type);
      if (m == null) {
        throw new MigrationStreamException("return path: unknown message type " + type + " (length " + len + ")", at);
      }
      if (len > ReturnPathMessage.MAX_LENGTH
          || (m.fixedLength() != ReturnPathMessage.VARIABLE && m.fixedLength() != len)) {
        throw new MigrationStreamException("return path: " + m + " has length " + len
            + (m.fixedLength() == ReturnPathMessage.VARIABLE ? "" : ", expected " + m.fixedLength()), at);
      }
      long payloadEnd = in.position() + len;
      String text = switch (m) {
        case SHUT -> {
          long status = in.readBe32Unsigned();
          yield "status " + status + (status == 0 ? " (ok)" : " (the destination failed)");
        }
        case PONG, RESUME_ACK -> "value " + in.readBe32Unsigned();
        case REQ_PAGES -> {
          if (lastBlock == null) {
            throw new MigrationStreamException("return path: REQ_PAGES before any REQ_PAGES_ID named a block", at);
          }
          long start = in.readBe64();
          long length = in.readBe32Unsigned();
          yield String.format("'%s' [0x%x, +0x%x)", lastBlock, start, length);
        }
        case REQ_PAGES_ID -> {
          if (len < 13) {
            throw new MigrationStreamException("return path: REQ_PAGES_ID length " + len + " is below 13", at);
          }
          long start = in.readBe64();
          long length = in.readBe32Unsigned();
          int n = in.readU8();
          if (len != 13 + n) {
            throw new MigrationStreamException(
                "return path: REQ_PAGES_ID length " + len + " does not match 13 + name length " + n, at);
          }
          lastBlock = new String(in.readBytes(n), StandardCharsets.ISO_8859_1);
          yield String.format("'%s' [0x%x, +0x%x)", lastBlock, start, length);
        }
        case RECV_BITMAP -> {
          int n = in.readU8();
          if (len != 1 + n) {
            throw new MigrationStreamException(
                "return path: RECV_BITMAP length " + len + " does not match 1 + name length " + n, at);
          }
          String block = new String(in.readBytes(n), StandardCharsets.ISO_8859_1);
          long size = in.readBe64();
          if (size < 0 || size > bytes.length - in.position()) {
            throw new MigrationStreamException(
                "return path: RECV_BITMAP '" + block + "' bitmap of " + size + " bytes runs past the end of the file", at);
          }
          long set = 0;
          for (long i = 0; i < size; i++) {
            set += Integer.bitCount(in.readU8());
          }
          long end = in.readBe64();
          if (end != ReturnPathMessage.RECV_BITMAP_ENDING) {
            throw new MigrationStreamException(
                String.format("return path: RECV_BITMAP '%s' end mark 0x%016x, expected 0x%016x", block, end,
                    ReturnPathMessage.RECV_BITMAP_ENDING), at);
          }
          yield "'" + block + "' bitmap " + size + " bytes, " + set + " pages received";
        }
      };
      if (m != ReturnPathMessage.RECV_BITMAP && in.position() != payloadEnd) {
        throw new MigrationStreamException("return path: " + m + " payload does not fill its length " + len, at);
      }
      out.add(new Message(at, m, text));
    }
    return out;
  }

  /** "PONG 4, REQ_PAGES_ID 1, ..." in message-type order. */
  public static String counts(List<Message> messages) {
    Map<ReturnPathMessage, Integer> n = new EnumMap<>(ReturnPathMessage.class);
    for (Message m : messages) {
      n.merge(m.type(), 1, Integer::sum);
    }
    StringBuilder sb = new StringBuilder();
    n.forEach((t, k) -> sb.append(sb.isEmpty() ? "" : ", ").append(t).append(' ').append(k));
    return sb.toString();
  }
}
