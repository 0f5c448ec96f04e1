package dev.ferry.qmp.hmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import dev.ferry.qmp.Sizes;
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
          new Cmd(
              "calc_dirty_rate",
              List.of(),
              "second [sample_pages_per_GB]",
              "start a round of guest dirty rate measurement (page sampling; see 'info dirty_rate')"),
          new Cmd("cont", List.of("c"), "", "resume emulation"),
          new Cmd("delvm", List.of(), "tag", "delete a VM snapshot from its tag"),
          new Cmd("help", List.of("?"), "[cmd]", "show the help"),
          new Cmd("info", List.of(), "[subcommand]", "show various information about the system state"),
          new Cmd("loadvm", List.of(), "tag", "restore a VM snapshot from its tag"),
          new Cmd(
              "migrate",
              List.of(),
              "[-d] [-b] [-i] [-r] uri",
              "migrate to URI (using -d to not wait for completion)\n\t\t\t -b to copy the disks too (no shared storage)\n\t\t\t -i to copy the disks incrementally (the destination holds the base)\n\t\t\t -r to resume a paused postcopy migration"),
          new Cmd("migrate_cancel", List.of(), "", "cancel the current VM migration"),
          new Cmd("migrate_continue", List.of(), "state", "let a migration paused in STATE (pre-switchover) go on"),
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
          new Cmd("quit", List.of("q"), "", "quit the emulator"),
          new Cmd("savevm", List.of(), "tag", "save a VM snapshot. If no tag is provided, a new snapshot is created"),
          new Cmd("stop", List.of(), "", "stop emulation"));

  static final List<Cmd> INFO =
      List.of(
          new Cmd("cpus", List.of(), "", "show infos for each CPU"),
          new Cmd("dirty_rate", List.of(), "", "show dirty rate information"),
          new Cmd("disk-check", List.of(), "", "check the disk program's records on every drive (Ferry)"),
          new Cmd("digest", List.of(), "[-p]", "show the exact digest of guest RAM and device state (Ferry; -p: with page digests)"),
          new Cmd("migrate", List.of(), "", "show migration status"),
          new Cmd("migrate_capabilities", List.of(), "", "show current migration capabilities"),
          new Cmd("migrate_parameters", List.of(), "", "show current migration parameters"),
          new Cmd("registers", List.of(), "[-a]", "show the cpu registers (-a: all CPUs)"),
          new Cmd("snapshots", List.of(), "", "show the currently saved VM snapshots"),
          new Cmd("status", List.of(), "", "show the current VM status (running|paused)"),
          new Cmd("stress", List.of(), "", "check guest RAM for the stress program's pattern (Ferry)"),
          new Cmd("version", List.of(), "", "show the version of QEMU"));

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

  /** Usage errors this interpreter prints (their first line), besides {@code Error: ...}. */
  private static final java.util.regex.Pattern USAGE_ERROR =
      java.util.regex.Pattern.compile(
          "[a-z_ ]+: (.* expected|extraneous characters at the end of line|expects .*)|Expected 'on' or 'off'|invalid size|unbalanced quotes");

  /**
   * Whether {@code output} of a command line is a failure: {@code Error: ...}, {@code unknown
   * command: ...} or a usage error. A console uses it for its exit status (QEMU's HMP has none).
   */
  public static boolean isError(String output) {
    String first = output.lines().findFirst().orElse("").strip();
    return first.startsWith("Error: ") || first.startsWith("unknown command: ") || USAGE_ERROR.matcher(first).matches();
  }

  /**
   * Completion candidates for word {@code index} of a command line split into {@code words}:
   * command names, {@code info} subcommands, capability and parameter names, {@code on|off}, and
   * snapshot tags (from {@code snapshotTags}, asked only when needed).
   */
  public static List<String> complete(List<String> words, int index, java.util.function.Supplier<List<String>> snapshotTags) {
    if (index == 0) {
      return commandNames();
    }
    String cmd = words.isEmpty() ? "" : words.getFirst();
    switch (cmd) {
      case "info" -> {
        return index == 1 ? infoNames() : List.of();
      }
      case "help", "?" -> {
        return index == 1 ? commandNames() : List.of();
      }
      case "migrate_set_capability" -> {
        if (index == 1) {
          return java.util.Arrays.stream(MigrationCapability.values()).map(MigrationCapability::qapiName).toList();
        }
        return index == 2 ? List.of("on", "off") : List.of();
      }
      case "migrate_set_parameter" -> {
        if (index == 1) {
          return java.util.Arrays.stream(MigrationParameter.values())
              .filter(p -> p.kind() != MigrationParameter.Kind.JSON_ARRAY)
              .map(MigrationParameter::wireName)
              .toList();
        }
        if (index == 2 && words.size() > 1) {
          MigrationParameter p = MigrationParameter.byWireName(words.get(1));
          return p != null && p.kind() == MigrationParameter.Kind.BOOL ? List.of("on", "off") : List.of();
        }
        return List.of();
      }
      case "loadvm", "delvm", "savevm" -> {
        return index == 1 ? snapshotTags.get() : List.of();
      }
      default -> {
        return List.of();
      }
    }
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
      case "quit", "q" -> {
        noArgs(name, a);
        qmp.backend().quit();
        return "";
      }
      case "calc_dirty_rate" -> {
        return calcDirtyRate(a);
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
      case "migrate_continue" -> {
        qmp.execute("migrate-continue", F.objectNode().put("state", one(name, a, "state")));
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
          v = Sizes.parse(one(name, a, "value"), 'M');
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
        JsonNode q = qmp.execute("query-migrate", null);
        return HmpFormatter.infoMigrate(MigrationInfo.fromJson(q), q.get("disk"));
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
      case "disk-check" -> {
        JsonNode r = qmp.execute("ferry-disk-check", null);
        return r.path("passed").asBoolean()
            ? "disk check: passed, " + r.path("records").asLong() + " records verified\n"
            : "disk check: FAILED after " + r.path("records").asLong() + " records: " + r.path("error").asText() + "\n";
      }
      case "version" -> {
        return HmpFormatter.infoVersion(dev.ferry.qmp.qapi.VersionInfo.fromJson(qmp.execute("query-version", null)));
      }
      case "cpus" -> {
        List<dev.ferry.qmp.qapi.CpuInfoFast> cpus = new ArrayList<>();
        for (JsonNode n : qmp.execute("query-cpus-fast", null)) {
          cpus.add(dev.ferry.qmp.qapi.CpuInfoFast.fromJson(n));
        }
        return HmpFormatter.infoCpus(cpus);
      }
      case "registers" -> {
        boolean all = a.size() > 1 && a.get(1).equals("-a");
        if (a.size() > (all ? 2 : 1)) {
          throw new UsageException("info registers: extraneous characters at the end of line");
        }
        int n = all ? qmp.execute("query-cpus-fast", null).size() : 1;
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
          sb.append(HmpFormatter.infoRegisters(dev.ferry.qmp.qapi.CpuRegisters.fromJson(
              qmp.execute("ferry-query-cpu-registers", F.objectNode().put("cpu-index", i)))));
        }
        return sb.toString();
      }
      case "dirty_rate" -> {
        return HmpFormatter.infoDirtyRate(dev.ferry.qmp.qapi.DirtyRateInfo.fromJson(qmp.execute("query-dirty-rate", null)));
      }
      default -> {
        return "Error: unknown info subcommand '" + sub + "'; the info subcommands are:\n" + help("info");
      }
    }
  }

  /** {@code calc_dirty_rate second [sample_pages_per_GB]} (QEMU's -r and -b modes are not offered). */
  private String calcDirtyRate(List<String> a) throws QmpError, UsageException {
    if (a.isEmpty()) {
      throw new UsageException("calc_dirty_rate: second expected");
    }
    if (a.size() > 2) {
      throw new UsageException("calc_dirty_rate: extraneous characters at the end of line");
    }
    if (a.getFirst().startsWith("-")) {
      throw QmpError.generic("calc_dirty_rate " + a.getFirst() + ": Ferry measures by page sampling only (no -r or -b)");
    }
    ObjectNode args = F.objectNode();
    try {
      args.put("calc-time", Long.parseLong(a.get(0)));
      if (a.size() == 2) {
        args.put("sample-pages", Long.parseLong(a.get(1)));
      }
    } catch (NumberFormatException e) {
      throw new UsageException("calc_dirty_rate: integer expected");
    }
    qmp.execute("calc-dirty-rate", args);
    return "Starting dirty rate measurement with calc time " + a.get(0) + " seconds\n"
        + "[Please use 'info dirty_rate' to check results]\n";
  }

  private String migrate(List<String> a) throws QmpError, UsageException {
    boolean detach = false;
    boolean resume = false;
    boolean blk = false;
    boolean inc = false;
    String uri = null;
    for (String s : a) {
      switch (s) {
        case "-d" -> detach = true;
        case "-r" -> resume = true;
        case "-b" -> blk = true;
        case "-i" -> inc = true;
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
        F.objectNode().put("uri", uri).put("detach", true).put("resume", resume).put("blk", blk).put("inc", inc));
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
      throw QmpError.generic("unknown migration capability '" + a.get(0) + "' (see 'info migrate_capabilities')");
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
      throw QmpError.generic("unknown migration parameter '" + name + "' (see 'info migrate_parameters')");
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
          args.put(name, Sizes.parse(value, unit));
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
