package dev.ferry.qmp.hmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.migration.MigrationStatus;
import dev.ferry.qmp.qapi.SnapshotInfo;
import dev.ferry.qmp.qapi.StatusInfo;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import dev.ferry.qmp.qapi.StressCheckInfo;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * QEMU's human monitor: parses an HMP command line, runs it through the QMP command table (as
 * QEMU's HMP calls its QMP handlers) and formats the answer as QEMU 7.2 prints it. Errors print as
 * {@code Error: DESC}, unknown commands as {@code unknown command: 'NAME'}.
 */
public final class Hmp {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  /** One HMP command: name, aliases, argument synopsis and help line. */
  record Cmd(String name, List<String> aliases, String params, String help) {}

  static final List<Cmd> COMMANDS =
      List.of(
          new Cmd("cont", List.of("c"), "", "resume emulation"),
          new Cmd("delvm", List.of(), "tag", "delete a VM snapshot from its tag"),
          new Cmd("help", List.of("?"), "[cmd]", "show the help"),
          new Cmd("info", List.of(), "[subcommand]", "show various information about the system state"),
          new Cmd("loadvm", List.of(), "tag", "restore a VM snapshot from its tag"),
          new Cmd(
              "migrate",
              List.of(),
              "[-d] [-r] uri",
              "migrate to URI (using -d to not wait for completion)\n\t\t\t -r to resume a paused postcopy migration"),
          new Cmd("migrate_cancel", List.of(), "", "cancel the current VM migration"),
          new Cmd(
              "migrate_incoming", List.of(), "uri", "Continue an incoming migration from an -incoming defer"),
          new Cmd(
              "migrate_set_capability", List.of(), "capability state", "Enable/Disable the usage of a capability for migration"),
          new Cmd(
              "migrate_set_parameter", List.of(), "parameter value", "Set the parameter for migration"),
          new Cmd(
              "migrate_set_speed",
              List.of(),
              "value",
              "set maximum speed (in bytes) for migrations. Defaults to MB if no size suffix is specified, ie. B/K/M/G/T"),
          new Cmd(
              "migrate_start_postcopy", List.of(), "", "Followup to a migration command to switch the migration to postcopy mode. The postcopy-ram capability must be set on both source and destination before the original migration command ."),
          new Cmd("object_add", List.of(), "[qom-type=]type,id=str[,prop=value][,...]", "create QOM object"),
          new Cmd("object_del", List.of(), "id", "destroy QOM object"),
          new Cmd("savevm", List.of(), "tag", "save a VM snapshot. If no tag is provided, a new snapshot is created"),
          new Cmd("stop", List.of(), "", "stop emulation"));

  static final List<Cmd> INFO =
      List.of(
          new Cmd("digest", List.of(), "[-p]", "show the exact digest of guest RAM and device state (Ferry; -p: with page digests)"),
          new Cmd("migrate", List.of(), "", "show migration status"),
          new Cmd("migrate_capabilities", List.of(), "", "show current migration capabilities"),
          new Cmd("migrate_parameters", List.of(), "", "show current migration parameters"),
          new Cmd("snapshots", List.of(), "", "show the currently saved VM snapshots"),
          new Cmd("status", List.of(), "", "show the current VM status (running|paused)"),
          new Cmd("stress", List.of(), "", "check guest RAM for the stress program's pattern (Ferry)"));

  private static final Set<MigrationStatus> MIGRATION_BUSY =
      Set.of(
          MigrationStatus.SETUP,
          MigrationStatus.ACTIVE,
          MigrationStatus.CANCELLING,
          MigrationStatus.PRE_SWITCHOVER,
          MigrationStatus.DEVICE,
          MigrationStatus.WAIT_UNPLUG);

  private final QmpDispatcher qmp;
  private volatile ZoneId zone = ZoneId.systemDefault();

  public Hmp(QmpDispatcher qmp) {
    this.qmp = qmp;
  }

  /** The time zone {@code info snapshots} prints dates in (default: the system's). */
  public void setZone(ZoneId zone) {
    this.zone = zone;
  }

  /** Command names and aliases, for completion. */
  public static List<String> commandNames() {
    List<String> names = new ArrayList<>();
    for (Cmd c : COMMANDS) {
      names.add(c.name());
      names.addAll(c.aliases());
    }
    return names;
  }

  /** {@code info} subcommand names, for completion. */
  public static List<String> infoNames() {
    return INFO.stream().map(Cmd::name).toList();
  }

  /** Runs one line; the output as {@code human-monitor-command} returns it (lines end in CR LF). */
  public String executeForQmp(String line) {
    return execute(line).replace("\n", "\r\n");
  }

  /** Runs one line and returns what QEMU would print (lines end in LF); never throws QmpError. */
  public String execute(String line) {
    List<String> args;
    try {
      args = tokenize(line);
    } catch (IllegalArgumentException e) {
      return e.getMessage() + "\n";
    }
    if (args.isEmpty()) {
      return "";
    }
    String name = args.getFirst();
    List<String> rest = args.subList(1, args.size());
    try {
      return run(name, rest);
    } catch (QmpError e) {
      return "Error: " + e.desc() + "\n";
    } catch (UsageException e) {
      return e.getMessage() + "\n";
    }
  }

  /** A command line HMP cannot parse; the message is what QEMU prints. */
  private static final class UsageException extends Exception {
    UsageException(String message) {
      super(message);
    }
  }

  private String run(String name, List<String> a) throws QmpError, UsageException {
    switch (name) {
      case "help", "?" -> {
        return help(a.isEmpty() ? null : a.getFirst());
      }
      case "info" -> {
        return info(a);
      }
      case "stop" -> {
        noArgs(name, a);
        qmp.execute("stop", null);
        return "";
      }
      case "cont", "c" -> {
        noArgs(name, a);
        qmp.execute("cont", null);
        return "";
      }
      case "migrate" -> {
        return migrate(a);
      }
      case "migrate_incoming" -> {
        qmp.execute("migrate-incoming", F.objectNode().put("uri", one(name, a, "uri")));
        return "";
      }
      case "migrate_cancel" -> {
        noArgs(name, a);
        qmp.execute("migrate_cancel", null);
        return "";
      }
      case "migrate_start_postcopy" -> {
        noArgs(name, a);
        qmp.execute("migrate-start-postcopy", null);
        return "";
      }
      case "migrate_set_capability" -> {
        return setCapability(a);
      }
      case "object_add" -> {
        if (a.size() != 1) {
          throw new UsageException(name + ": expects TYPE,id=ID,...");
        }
        dev.ferry.transport.TlsObjects.ObjectOption o;
        try {
          o = dev.ferry.transport.TlsObjects.parseOption(a.get(0));
        } catch (IllegalArgumentException e) {
          throw QmpError.generic(e.getMessage());
        }
        ObjectNode args = F.objectNode().put("qom-type", o.qomType());
        for (java.util.Map.Entry<String, Object> e : o.props().entrySet()) {
          args.set(e.getKey(), objectProperty(e.getKey(), e.getValue()));
        }
        qmp.execute("object-add", args);
        return "";
      }
      case "object_del" -> {
        qmp.execute("object-del", F.objectNode().put("id", one(name, a, "id")));
        return "";
      }
      case "migrate_set_parameter" -> {
        if (a.size() != 2) {
          throw new UsageException(name + ": expects a parameter name and a value");
        }
        setParameter(a.get(0), a.get(1));
        return "";
      }
      case "migrate_set_speed" -> {
        long v;
        try {
          v = HmpSizes.parse(one(name, a, "value"), 'M');
        } catch (NumberFormatException e) {
          throw new UsageException("invalid size");
        }
        qmp.execute("migrate-set-parameters", F.objectNode().put("max-bandwidth", v));
        return "";
      }
      case "savevm" -> {
        qmp.execute("ferry-snapshot-save", F.objectNode().put("name", snapshotName(name, a)));
        return "";
      }
      case "loadvm" -> {
        qmp.execute("ferry-snapshot-load", F.objectNode().put("name", one(name, a, "tag")));
        return "";
      }
      case "delvm" -> {
        qmp.execute("ferry-snapshot-delete", F.objectNode().put("name", one(name, a, "tag")));
        return "";
      }
      default -> {
        return "unknown command: '" + name + "'\n";
      }
    }
  }

  private String snapshotName(String name, List<String> a) throws UsageException {
    if (a.isEmpty()) {
      // QEMU names an untagged snapshot after the date and time
      return "vm-"
          + java.time.format.DateTimeFormatter.ofPattern("yyyyMMddHHmmss")
              .format(java.time.LocalDateTime.now(zone));
    }
    return one(name, a, "tag");
  }

  private static void noArgs(String name, List<String> a) throws UsageException {
    if (!a.isEmpty()) {
      throw new UsageException(name + ": extraneous characters at the end of line");
    }
  }

  /** An object_add property as object-add's JSON: verify-peer as a boolean, rules as objects. */
  private static com.fasterxml.jackson.databind.JsonNode objectProperty(String key, Object v) throws QmpError {
    if (v instanceof List<?> list) {
      com.fasterxml.jackson.databind.node.ArrayNode arr = F.arrayNode();
      for (Object o : list) {
        ObjectNode rule = arr.addObject();
        for (java.util.Map.Entry<?, ?> e : ((java.util.Map<?, ?>) o).entrySet()) {
          rule.put(String.valueOf(e.getKey()), String.valueOf(e.getValue()));
        }
      }
      return arr;
    }
    String s = String.valueOf(v);
    if (key.equals("verify-peer")) {
      return switch (s) {
        case "on", "yes", "true" -> F.booleanNode(true);
        case "off", "no", "false" -> F.booleanNode(false);
        default -> throw QmpError.generic("Parameter 'verify-peer' expects 'on' or 'off'");
      };
    }
    return F.textNode(s);
  }

  private static String one(String name, List<String> a, String what) throws UsageException {
    if (a.isEmpty()) {
      throw new UsageException(name + ": " + what + " expected");
    }
    if (a.size() > 1) {
      throw new UsageException(name + ": extraneous characters at the end of line");
    }
    return a.getFirst();
  }

  private String info(List<String> a) throws QmpError, UsageException {
    if (a.isEmpty()) {
      return help("info");
    }
    String sub = a.getFirst();
    switch (sub) {
      case "status" -> {
        return HmpFormatter.infoStatus(StatusInfo.fromJson(qmp.execute("query-status", null)));
      }
      case "migrate" -> {
        return HmpFormatter.infoMigrate(MigrationInfo.fromJson(qmp.execute("query-migrate", null)));
      }
      case "migrate_capabilities" -> {
        List<MigrationCapabilityStatus> caps = new ArrayList<>();
        for (JsonNode n : qmp.execute("query-migrate-capabilities", null)) {
          caps.add(MigrationCapabilityStatus.fromJson(n));
        }
        return HmpFormatter.infoMigrateCapabilities(caps);
      }
      case "migrate_parameters" -> {
        return HmpFormatter.infoMigrateParameters(
            MigrationParameters.fromJson(qmp.execute("query-migrate-parameters", null)));
      }
      case "snapshots" -> {
        List<SnapshotInfo> list = new ArrayList<>();
        for (JsonNode n : qmp.execute("ferry-query-snapshots", null)) {
          list.add(SnapshotInfo.fromJson(n));
        }
        return HmpFormatter.infoSnapshots(list, zone);
      }
      case "digest" -> {
        boolean pages = a.size() > 1 && a.get(1).equals("-p");
        return HmpFormatter.infoDigest(
            MemoryDigestInfo.fromJson(qmp.execute("ferry-memory-digest", F.objectNode().put("pages", pages))), pages);
      }
      case "stress" -> {
        return HmpFormatter.infoStress(StressCheckInfo.fromJson(qmp.execute("ferry-stress-check", null)));
      }
      default -> {
        return help("info");
      }
    }
  }

  private String migrate(List<String> a) throws QmpError, UsageException {
    boolean detach = false;
    boolean resume = false;
    String uri = null;
    for (String s : a) {
      switch (s) {
        case "-d" -> detach = true;
        case "-r" -> resume = true;
        default -> {
          if (uri != null) {
            throw new UsageException("migrate: extraneous characters at the end of line");
          }
          uri = s;
        }
      }
    }
    if (uri == null) {
      throw new UsageException("migrate: uri expected");
    }
    qmp.execute(
        "migrate",
        F.objectNode().put("uri", uri).put("detach", true).put("resume", resume));
    if (detach) {
      return "";
    }
    // without -d, HMP waits for the migration to end, as QEMU's monitor does
    while (true) {
      MigrationInfo info = MigrationInfo.fromJson(qmp.execute("query-migrate", null));
      if (info.status() == null || !MIGRATION_BUSY.contains(info.status())) {
        if (info.status() == MigrationStatus.FAILED) {
          return "Error: "
              + (info.errorDesc() != null ? info.errorDesc() : "migration failed")
              + "\n";
        }
        return "";
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return "";
      }
    }
  }

  private String setCapability(List<String> a) throws QmpError, UsageException {
    if (a.size() != 2) {
      throw new UsageException("migrate_set_capability: expects a capability and on|off");
    }
    MigrationCapability cap;
    try {
      cap = MigrationCapability.fromQapiName(a.get(0));
    } catch (IllegalArgumentException e) {
      throw QmpError.generic("invalid parameter value: " + a.get(0));
    }
    boolean state =
        switch (a.get(1)) {
          case "on" -> true;
          case "off" -> false;
          default -> throw new UsageException("Expected 'on' or 'off'");
        };
    ObjectNode args = F.objectNode();
    args.putArray("capabilities").add(new MigrationCapabilityStatus(cap, state).toJson());
    qmp.execute("migrate-set-capabilities", args);
    return "";
  }

  private void setParameter(String name, String value) throws QmpError {
    MigrationParameter p = MigrationParameter.byWireName(name);
    if (p == null) {
      throw QmpError.generic("invalid parameter value: " + name);
    }
    ObjectNode args = F.objectNode();
    switch (p.kind()) {
      case BOOL -> {
        Boolean b =
            switch (value) {
              case "on", "yes", "true" -> Boolean.TRUE;
              case "off", "no", "false" -> Boolean.FALSE;
              default -> null;
            };
        if (b == null) {
          throw QmpError.generic("Parameter '" + name + "' expects 'on' or 'off'");
        }
        args.put(name, b);
      }
      case SIZE -> {
        try {
          // max-bandwidth takes MiB by default, like QEMU; other sizes take bytes
          char unit = p == MigrationParameter.MAX_BANDWIDTH ? 'M' : 'B';
          args.put(name, HmpSizes.parse(value, unit));
        } catch (NumberFormatException e) {
          throw p == MigrationParameter.MAX_BANDWIDTH
              ? QmpError.generic("Invalid size " + value)
              : QmpError.generic("Parameter '" + name + "' expects a size value");
        }
      }
      case UINT8, UINT32, UINT64 -> {
        long v;
        try {
          v = Long.parseLong(value);
        } catch (NumberFormatException e) {
          throw QmpError.generic("Parameter '" + name + "' expects uint64");
        }
        args.put(name, v);
      }
      case STR, ENUM -> args.put(name, value);
      case JSON_ARRAY ->
          throw QmpError.generic("The parameter " + name + " cannot be set with HMP");
    }
    qmp.execute("migrate-set-parameters", args);
  }

  private static String help(String about) {
    StringBuilder sb = new StringBuilder();
    if ("info".equals(about)) {
      for (Cmd c : INFO) {
        sb.append("info ").append(c.name()).append("  -- ").append(c.help()).append('\n');
      }
      return sb.toString();
    }
    for (Cmd c : COMMANDS) {
      if (about != null && !c.name().equals(about) && !c.aliases().contains(about)) {
        continue;
      }
      sb.append(String.join("|", prepend(c.name(), c.aliases())));
      if (!c.params().isEmpty()) {
        sb.append(' ').append(c.params());
      }
      sb.append(" -- ").append(c.help()).append('\n');
    }
    if (sb.isEmpty()) {
      return "unknown command: '" + about + "'\n";
    }
    return sb.toString();
  }

  private static List<String> prepend(String first, List<String> rest) {
    List<String> l = new ArrayList<>();
    l.add(first);
    l.addAll(rest);
    return l;
  }

  /** Splits a command line at blanks; single or double quotes group, backslash escapes. */
  static List<String> tokenize(String line) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = null;
    char quote = 0;
    for (int i = 0; i < line.length(); i++) {
      char c = line.charAt(i);
      if (quote != 0) {
        if (c == '\\' && quote == '"' && i + 1 < line.length()) {
          cur.append(line.charAt(++i));
        } else if (c == quote) {
          quote = 0;
        } else {
          cur.append(c);
        }
      } else if (Character.isWhitespace(c)) {
        if (cur != null) {
          out.add(cur.toString());
          cur = null;
        }
      } else {
        if (cur == null) {
          cur = new StringBuilder();
        }
        if (c == '"' || c == '\'') {
          quote = c;
        } else {
          cur.append(c);
        }
      }
    }
    if (quote != 0) {
      throw new IllegalArgumentException("unbalanced quotes");
    }
    if (cur != null) {
      out.add(cur.toString());
    }
    return out;
  }
}
