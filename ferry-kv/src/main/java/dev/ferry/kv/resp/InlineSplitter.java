package dev.ferry.kv.resp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Splits an inline command line into arguments with the quoting rules of Redis's inline protocol
 * (and redis-cli): words separated by blanks; {@code "..."} with the escapes {@code \n \r \t \b \a
 * \\ \"} and {@code \xHH}; {@code '...'} with {@code \'}; a closing quote must be followed by a blank
 * or the end of the line.
 */
final class InlineSplitter {
  private InlineSplitter() {}

  /** The arguments of {@code line[from, to)}, or null when a quote is not closed properly. */
  static List<byte[]> split(byte[] line, int from, int to) {
    List<byte[]> out = new ArrayList<>();
    byte[] word = new byte[to - from]; // a word is never longer than the line: one buffer for all
    int i = from;
    while (true) {
      while (i < to && isBlank(line[i])) {
        i++;
      }
      if (i >= to) {
        return out;
      }
      int n = 0;
      boolean inDouble = false;
      boolean inSingle = false;
      boolean done = false;
      while (!done) {
        if (inDouble) {
          if (i >= to) {
            return null;
          }
          byte c = line[i];
          if (c == '\\' && i + 3 < to && line[i + 1] == 'x' && hex(line[i + 2]) >= 0 && hex(line[i + 3]) >= 0) {
            word[n++] = (byte) (hex(line[i + 2]) * 16 + hex(line[i + 3]));
            i += 4;
          } else if (c == '\\' && i + 1 < to) {
            byte e = line[i + 1];
            word[n++] = (byte) switch (e) {
              case 'n' -> '\n';
              case 'r' -> '\r';
              case 't' -> '\t';
              case 'b' -> '\b';
              case 'a' -> 7;
              default -> e;
            };
            i += 2;
          } else if (c == '"') {
            if (i + 1 < to && !isBlank(line[i + 1])) {
              return null; // the closing quote must end the word
            }
            i++;
            done = true;
          } else {
            word[n++] = c;
            i++;
          }
        } else if (inSingle) {
          if (i >= to) {
            return null;
          }
          byte c = line[i];
          if (c == '\\' && i + 1 < to && line[i + 1] == '\'') {
            word[n++] = '\'';
            i += 2;
          } else if (c == '\'') {
            if (i + 1 < to && !isBlank(line[i + 1])) {
              return null;
            }
            i++;
            done = true;
          } else {
            word[n++] = c;
            i++;
          }
        } else if (i >= to || isBlank(line[i])) {
          done = true;
        } else if (line[i] == '"') {
          inDouble = true;
          i++;
        } else if (line[i] == '\'') {
          inSingle = true;
          i++;
        } else {
          word[n++] = line[i];
          i++;
        }
      }
      out.add(Arrays.copyOf(word, n));
    }
  }

  private static boolean isBlank(byte b) {
    return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == 0;
  }

  private static int hex(byte b) {
    if (b >= '0' && b <= '9') {
      return b - '0';
    }
    if (b >= 'a' && b <= 'f') {
      return b - 'a' + 10;
    }
    if (b >= 'A' && b <= 'F') {
      return b - 'A' + 10;
    }
    return -1;
  }
}
