package dev.ferry.transport;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import java.security.MessageDigest;

/**
 * The child half of {@link FdInheritanceTest}: opens the URI it is given (e.g. {@code fd:3}),
 * reads a length-prefixed stream, answers its SHA-256 over the return path, and exits 0.
 */
public final class FdEchoChild {
  private FdEchoChild() {}

  public static void main(String[] args) throws Exception {
    // what an embedding program does for a descriptor it inherited for migration
    MigrationFds.allowInherited(Integer.parseInt(args[0].substring("fd:".length())));
    try (TransportListener l = Transports.listen(args[0]);
        MigrationChannel ch = l.accept()) {
      if (!ch.supportsReturnPath()) {
        System.err.println("no return path on " + ch.peerDescription());
        System.exit(3);
      }
      MigrationInput in = new MigrationInput(ch);
      long len = in.readBe64();
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[64 * 1024];
      while (len > 0) {
        int n = (int) Math.min(len, buf.length);
        in.readFully(buf, 0, n);
        md.update(buf, 0, n);
        len -= n;
      }
      MigrationOutput out = new MigrationOutput(ch);
      out.writeBytes(md.digest()).flush();
      System.exit(in.atEnd() ? 0 : 4);
    }
  }
}
