package dev.ferry.cli;

import dev.ferry.qmp.QmpClient;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.hmp.Hmp;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.jline.reader.Candidate;
import org.jline.reader.Completer;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.LineReaderBuilder;
import org.jline.reader.UserInterruptException;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import dev.ferry.transport.TlsCredentials;

/**
 * {@code ferry monitor URI}: QEMU's human monitor over QMP. Each line is sent as {@code
 * human-monitor-command} and its output printed; a line starting with <code>{</code> is a QMP
 * command and goes to the monitor unchanged, its answer printed as JSON. Asynchronous events are
 * not printed (QEMU's HMP does not show them either). On a terminal it edits lines with history
 * ({@value #HISTORY_FILE_NAME} in the home directory) and completes command names, {@code info}
 * subcommands, capability and parameter names, {@code on|off} and snapshot tags; otherwise it reads
 * lines from stdin, so it can be scripted ({@code echo 'info status' | ferry monitor unix:src.qmp}).
 *
 * <p>Exit status: 0 when every command succeeded (after {@code quit} or at the end of input), 1
 * when one failed ({@code Error: ...}, an unknown command, a usage error, a QMP error answer) or
 * the connection broke, 2 for a malformed URI.
 */
@Command(
    name = "monitor",
    mixinStandardHelpOptions = true,
    description = {
      "Interactive HMP console over a QMP monitor (unix:PATH or tcp:HOST:PORT).",
      "Lines starting with '{' go to QMP unchanged. History: ~/" + MonitorCommand.HISTORY_FILE_NAME + ".",
      "Exit status: 0 if every command succeeded, 1 if one failed or the connection broke."
    })
public final class MonitorCommand implements Callable<Integer> {
  /** The line history of interactive sessions, in the user's home directory. */
  static final String HISTORY_FILE_NAME = ".ferry_monitor_history";

  @Parameters(index = "0", paramLabel = "URI", description = "QMP monitor: unix:PATH or tcp:HOST:PORT")
  String uri;

  @Option(
      names = "--tls-creds",
      paramLabel = "DIR",
      description = "connect inside TLS with the client credentials in DIR (ca-cert.pem, client-cert.pem, client-key.pem); the monitor's certificate must carry the URI's host")
  Path tlsCredsDir;

  @picocli.CommandLine.Mixin CliErrors.Verbose verbose = new CliErrors.Verbose();

  @Override
  public Integer call() throws Exception {
    TlsCredentials creds;
    try {
      creds = tlsCredsDir == null ? null : TlsCredentials.load("ferry-monitor", tlsCredsDir, TlsCredentials.Endpoint.CLIENT, true);
    } catch (IOException e) {
      System.err.println("ferry monitor: --tls-creds " + tlsCredsDir + ": " + CliErrors.describe(e));
      return 1;
    }
    QmpClient client;
    try {
      client = QmpClient.connect(uri, creds);
    } catch (IllegalArgumentException e) {
      String hint = uri.startsWith("/") || uri.startsWith(".") || uri.endsWith(".qmp") ? " (did you mean unix:" + uri + "?)" : "";
      System.err.println("ferry monitor: " + e.getMessage() + hint);
      return 2;
    } catch (IOException e) {
      System.err.println("ferry monitor: cannot reach the QMP monitor " + uri + ": " + CliErrors.describe(e));
      return 1;
    }
    try (client) {
      if (System.console() != null && System.console().isTerminal()) {
        return interactive(client);
      }
      return scripted(client, System.in, System.out);
    }
  }

  /** What one line did. */
  enum Outcome {
    OK,
    FAILED,
    QUIT,
    LOST
  }

  /**
   * Reads commands from {@code in} until EOF or {@code quit}; returns 0 when all succeeded, 1 when
   * one failed or the connection broke.
   */
  static int scripted(QmpClient client, InputStream in, PrintStream out) throws IOException {
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    boolean failed = false;
    for (String line; (line = r.readLine()) != null; ) {
      Outcome o = runLine(client, line, out);
      if (o == Outcome.LOST) {
        return 1;
      }
      failed |= o == Outcome.FAILED;
      if (o == Outcome.QUIT) {
        break;
      }
    }
    return failed ? 1 : 0;
  }

  static Outcome runLine(QmpClient client, String line, PrintStream out) {
    String l = line.strip();
    if (l.isEmpty()) {
      return Outcome.OK;
    }
    if (l.startsWith("{")) {
      return qmpLine(client, l, out);
    }
    if (l.equals("quit") || l.equals("q")) {
      try {
        client.execute("quit");
      } catch (IOException | QmpError e) {
        out.println("Error: " + e.getMessage());
        return Outcome.FAILED;
      }
      return Outcome.QUIT;
    }
    try {
      String text = client.hmp(l).replace("\r\n", "\n");
      out.print(text);
      out.flush();
      return Hmp.isError(text) ? Outcome.FAILED : Outcome.OK;
    } catch (QmpError e) {
      out.println("Error: " + e.desc());
      return Outcome.FAILED;
    } catch (IOException e) {
      out.println("ferry monitor: connection lost: " + CliErrors.describe(e));
      return Outcome.LOST;
    }
  }

  /** A QMP command typed as JSON: sent unchanged, the answer printed as QMP writes it. */
  private static Outcome qmpLine(QmpClient client, String line, PrintStream out) {
    com.fasterxml.jackson.databind.node.ObjectNode req;
    try {
      req = QmpClient.parseRequest(line);
    } catch (IOException e) {
      out.println("Error: " + e.getMessage());
      return Outcome.FAILED;
    }
    try {
      var answer = client.executeRaw(req);
      out.println(QmpClient.format(answer));
      out.flush();
      if ("quit".equals(req.path("execute").asText()) && answer.has("return")) {
        return Outcome.QUIT;
      }
      return answer.has("error") ? Outcome.FAILED : Outcome.OK;
    } catch (IOException e) {
      out.println("ferry monitor: connection lost: " + CliErrors.describe(e));
      return Outcome.LOST;
    }
  }

  private int interactive(QmpClient client) throws IOException {
    try (Terminal terminal = TerminalBuilder.builder().system(true).build()) {
      LineReader reader =
          LineReaderBuilder.builder()
              .terminal(terminal)
              .appName("ferry")
              .completer(new HmpCompleter(client))
              .variable(LineReader.HISTORY_FILE, Path.of(System.getProperty("user.home"), HISTORY_FILE_NAME))
              .build();
      PrintStream out = new PrintStream(terminal.output(), true, StandardCharsets.UTF_8);
      terminal.writer().println("Ferry monitor on " + uri + " - type 'help' for more information");
      terminal.flush();
      boolean failed = false;
      while (true) {
        String line;
        try {
          line = reader.readLine("(ferry) ");
        } catch (UserInterruptException e) {
          continue;
        } catch (EndOfFileException e) {
          return failed ? 1 : 0;
        }
        Outcome o = runLine(client, line, out);
        failed |= o == Outcome.FAILED;
        if (o == Outcome.LOST) {
          return 1;
        }
        if (o == Outcome.QUIT) {
          return failed ? 1 : 0;
        }
      }
    }
  }

  /** Completes with {@link Hmp#complete}; snapshot tags come from the monitor. */
  static final class HmpCompleter implements Completer {
    private final QmpClient client;

    HmpCompleter(QmpClient client) {
      this.client = client;
    }

    @Override
    public void complete(LineReader reader, org.jline.reader.ParsedLine line, List<Candidate> candidates) {
      Hmp.complete(line.words(), line.wordIndex(), this::snapshotTags).forEach(n -> candidates.add(new Candidate(n)));
    }

    List<String> snapshotTags() {
      List<String> tags = new ArrayList<>();
      try {
        client.execute("ferry-query-snapshots").forEach(s -> tags.add(s.path("name").asText()));
      } catch (IOException | QmpError e) {
        // no tags to offer
      }
      return tags;
    }
  }
}
