package dev.ferry.savevm;

import dev.ferry.stream.Command;
import java.util.List;

/** A parsed COMMAND record (type byte 0x08), one record type per {@link Command}. */
public sealed interface StreamCommand {
  Command command();

  record OpenReturnPath() implements StreamCommand {
    public Command command() {
      return Command.OPEN_RETURN_PATH;
    }
  }

  record Ping(long value) implements StreamCommand {
    public Command command() {
      return Command.PING;
    }
  }

  /**
   * POSTCOPY_ADVISE; {@code hostPageSizes} is the OR of all block page sizes. Both are -1 for the
   * empty (dirty-bitmaps only) form.
   */
  record PostcopyAdvise(long hostPageSizes, long targetPageSize) implements StreamCommand {
    public boolean empty() {
      return hostPageSizes < 0;
    }

    public Command command() {
      return Command.POSTCOPY_ADVISE;
    }
  }

  record PostcopyListen() implements StreamCommand {
    public Command command() {
      return Command.POSTCOPY_LISTEN;
    }
  }

  record PostcopyRun() implements StreamCommand {
    public Command command() {
      return Command.POSTCOPY_RUN;
    }
  }

  /** Byte ranges of one block whose copy the destination must drop. At most 12 per command. */
  record RamDiscard(String blockName, List<Range> ranges) implements StreamCommand {
    public static final int MAX_RANGES = 12;

    public RamDiscard {
      ranges = List.copyOf(ranges);
    }

    public Command command() {
      return Command.POSTCOPY_RAM_DISCARD;
    }
  }

  record Range(long start, long length) {}

  /** A PACKAGED header: {@code length} bytes of nested stream follow (read by the reader). */
  record Packaged(long length) implements StreamCommand {
    public Command command() {
      return Command.PACKAGED;
    }
  }

  record EnableColo() implements StreamCommand {
    public Command command() {
      return Command.ENABLE_COLO;
    }
  }

  record PostcopyResume() implements StreamCommand {
    public Command command() {
      return Command.POSTCOPY_RESUME;
    }
  }

  record RecvBitmap(String blockName) implements StreamCommand {
    public Command command() {
      return Command.RECV_BITMAP;
    }
  }
}
