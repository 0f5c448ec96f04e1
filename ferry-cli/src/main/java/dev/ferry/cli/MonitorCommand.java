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
import java.nio.file.Path;

/**
 * {@code ferry monitor URI}: QEMU's human monitor over QMP. Each line is sent as {@code
 * human-monitor-command} and its output printed; events print as they arrive. On a terminal it edits
 * lines with history and completes command names; otherwise it reads lines from stdin, so it can be
 * scripted ({@code echo 'info status' | ferry monitor unix:src.qmp}).
 */
@Command(
    name = "monitor",
    mixinStandardHelpOptions = true,
    description = "Interactive HMP console over a QMP monitor (unix:PATH or tcp:HOST:PORT).")
public final class MonitorCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "URI", description = "QMP monitor: unix:PATH or tcp:HOST:PORT")
  String uri;

  @Option(
      names = "--tls-creds",
      paramLabel = "DIR",
      description = "connect inside TLS with the client credentials in DIR (ca-cert.pem, client-cert.pem, client-key.pem); the monitor's certificate must carry the URI's host")
  Path tlsCredsDir;

  @Override
  public Integer call() throws Exception {
    TlsCredentials creds;
    try {
      creds = tlsCredsDir == null ? null : TlsCredentials.load("ferry-monitor", tlsCredsDir, TlsCredentials.Endpoint.CLIENT, true);
    } catch (IOException e) {
      System.err.println("ferry monitor: " + e.getMessage());
      return 1;
    }
    try (QmpClient client = QmpClient.connect(uri, creds)) {
      if (System.console() != null && System.console().isTerminal()) {
        return interactive(client);
      }
      return scripted(client, System.in, System.out);
    } catch (IOException e) {
      System.err.println("ferry monitor: " + e.getMessage());
      return 1;
    }
  }

  /** Reads commands from {@code in} until EOF; returns 0, or 1 if the connection broke. */
  static int scripted(QmpClient client, InputStream in, PrintStream out) throws IOException {
    client.setEventListener(e -> out.println(e.toString()));
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    for (String line; (line = r.readLine()) != null; ) {
      if (!runLine(client, line, out)) {
        return 1;
      }
    }
    return 0;
  }

  private static boolean runLine(QmpClient client, String line, PrintStream out) {
    String l = line.strip();
    if (l.isEmpty()) {
      return true;
    }
    if (l.equals("quit") || l.equals("q")) {
      try {
        client.execute("quit");
      } catch (IOException | QmpError e) {
        out.println("Error: " + e.getMessage());
      }
      return false;
    }
    try {
      out.print(client.hmp(l).replace("\r\n", "\n"));
      out.flush();
      return true;
    } catch (QmpError e) {
      out.println("Error: " + e.desc());
      return true;
    } catch (IOException e) {
      out.println("ferry monitor: connection lost: " + e.getMessage());
      return false;
    }
  }

  private int interactive(QmpClient client) throws IOException {
    try (Terminal terminal = TerminalBuilder.builder().system(true).build()) {
      LineReader reader =
          LineReaderBuilder.builder()
              .terminal(terminal)
              .appName("ferry")
              .completer(new HmpCompleter())
              .variable(
                  LineReader.HISTORY_FILE,
                  Path.of(System.getProperty("user.home"), ".ferry_monitor_history"))
              .build();
      PrintStream out = new PrintStream(terminal.output(), true, StandardCharsets.UTF_8);
      client.setEventListener(e -> reader.printAbove(e.toString()));
      terminal.writer().println("Ferry monitor on " + uri + " - type 'help' for more information");
      terminal.flush();
      while (true) {
        String line;
        try {
          line = reader.readLine("(ferry) ");
        } catch (UserInterruptException e) {
          continue;
        } catch (EndOfFileException e) {
          return 0;
        }
        if (!runLine(client, line, out)) {
          return 0;
        }
      }
    }
  }

  /** Completes HMP command names, and {@code info} subcommands after {@code info}. */
  static final class HmpCompleter implements Completer {
    @Override
    public void complete(
        LineReader reader, org.jline.reader.ParsedLine line, List<Candidate> candidates) {
      List<String> names = new ArrayList<>();
      if (line.wordIndex() == 0) {
        names.addAll(Hmp.commandNames());
        names.add("quit");
      } else if (line.wordIndex() == 1 && line.words().getFirst().equals("info")) {
        names.addAll(Hmp.infoNames());
      } else if (line.wordIndex() == 1 && line.words().getFirst().equals("help")) {
        names.addAll(Hmp.commandNames());
      }
      names.forEach(n -> candidates.add(new Candidate(n)));
    }
  }
}
