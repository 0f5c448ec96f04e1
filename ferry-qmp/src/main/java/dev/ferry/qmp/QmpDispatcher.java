package dev.ferry.qmp;

import static dev.ferry.qmp.QapiType.Member.optional;
import static dev.ferry.qmp.QapiType.Member.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import dev.ferry.qmp.hmp.Hmp;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.qapi.MemoryDigestInfo;
import dev.ferry.qmp.qapi.MigrationCapabilityStatus;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationParameters;
import dev.ferry.qmp.qapi.SnapshotInfo;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The QMP command table: every command's name, its QAPI argument schema (checked before the
 * handler runs) and its handler, which delegates to a {@link MonitorBackend}. Shared by every
 * connection of a server and by HMP, which runs its commands through here as QEMU's HMP runs the QMP
 * handlers.
 *
 * <p>Snapshots: QEMU 7.2's {@code snapshot-save}/{@code -load}/{@code -delete} are background jobs
 * tied to block devices. Ferry offers synchronous {@code ferry-snapshot-save}, {@code
 * ferry-snapshot-load}, {@code ferry-snapshot-delete} (argument {@code name}) and {@code
 * ferry-query-snapshots} instead, and HMP's savevm/loadvm/delvm/info snapshots use them.
 */
public final class QmpDispatcher {
  /** The command that ends the session's capability-negotiation mode. */
  public static final String QMP_CAPABILITIES = "qmp_capabilities";

  @FunctionalInterface
  interface Handler {
    JsonNode run(ObjectNode args) throws QmpError;
  }

  record Command(String name, QapiType.Struct schema, Handler handler) {}

  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  private final MonitorBackend backend;
  private final Map<String, Command> commands = new LinkedHashMap<>();
  private final Hmp hmp;

  public QmpDispatcher(MonitorBackend backend) {
    this.backend = Objects.requireNonNull(backend, "backend");
    this.hmp = new Hmp(this);
    register();
  }

  public MonitorBackend backend() {
    return backend;
  }

  /** The HMP interpreter that runs over this table. */
  public Hmp hmp() {
    return hmp;
  }

  /** Names of every command, in table order. */
  public List<String> commandNames() {
    return List.copyOf(commands.keySet());
  }

  /**
   * Checks {@code args} (null = none) against the command's schema and runs it. Unknown command:
   * CommandNotFound; bad arguments: GenericError worded as QEMU's input visitor words it.
   */
  public JsonNode execute(String name, ObjectNode args) throws QmpError {
    Command c = commands.get(name);
    if (c == null) {
      throw new QmpError(
          QmpErrorClass.COMMAND_NOT_FOUND, "The command " + name + " has not been found");
    }
    ObjectNode a = args == null ? F.objectNode() : args;
    c.schema().check(a, "");
    JsonNode result = c.handler().run(a);
    return result == null ? F.objectNode() : result;
  }

  private void add(String name, QapiType.Struct schema, Handler handler) {
    commands.put(name, new Command(name, schema, handler));
  }

  private static final QapiType.Struct NONE = QapiType.Struct.of();

  private void register() {
    add(
        QMP_CAPABILITIES,
        QapiType.Struct.of(optional("enable", new QapiType.Array(new QapiType.Enum(List.of("oob"))))),
        a -> {
          throw new QmpError(
              QmpErrorClass.COMMAND_NOT_FOUND,
              "Capabilities negotiation is already complete, command ignored");
        });
    add("query-status", NONE, a -> backend.queryStatus().toJson());
    add(
        "stop",
        NONE,
        a -> {
          backend.stop();
          return null;
        });
    add(
        "cont",
        NONE,
        a -> {
          backend.cont();
          return null;
        });
    add("quit", NONE, a -> null); // the session calls backend.quit() once the reply is out
    add("query-version", NONE, a -> backend.version().toJson());
    add(
        "query-machines",
        QapiType.Struct.of(optional("compat-props", QapiType.BOOL)),
        a -> {
          ArrayNode arr = F.arrayNode();
          for (dev.ferry.qmp.qapi.MachineInfo m : dev.ferry.qmp.qapi.MachineInfo.all(a.path("compat-props").asBoolean())) {
            arr.add(m.toJson());
          }
          return arr;
        });
    add(
        "query-commands",
        NONE,
        a -> {
          ArrayNode arr = F.arrayNode();
          for (String n : commands.keySet()) {
            arr.addObject().put("name", n);
          }
          return arr;
        });
    add(
        "migrate",
        QapiType.Struct.of(
            required("uri", QapiType.STR),
            optional("blk", QapiType.BOOL),
            optional("inc", QapiType.BOOL),
            optional("detach", QapiType.BOOL),
            optional("resume", QapiType.BOOL)),
        a -> {
          backend.migrate(
              a.get("uri").textValue(),
              a.path("detach").asBoolean(),
              a.path("resume").asBoolean(),
              a.path("blk").asBoolean(),
              a.path("inc").asBoolean());
          return null;
        });
    add(
        "migrate-incoming",
        QapiType.Struct.of(required("uri", QapiType.STR)),
        a -> {
          backend.migrateIncoming(a.get("uri").textValue());
          return null;
        });
    add(
        "getfd",
        QapiType.Struct.of(required("fdname", QapiType.STR)),
        a -> {
          // QEMU's qmp_getfd: the descriptor came with this command's bytes (SCM_RIGHTS)
          QmpSession.ReceivedFds fds = QmpSession.RECEIVED_FDS.isBound() ? QmpSession.RECEIVED_FDS.get() : null;
          java.util.OptionalInt fd = fds == null ? java.util.OptionalInt.empty() : fds.take();
          if (fd.isEmpty()) {
            throw QmpError.generic("No file descriptor supplied via SCM_RIGHTS");
          }
          backend.getfd(a.get("fdname").textValue(), fd.getAsInt());
          return null;
        });
    add(
        "closefd",
        QapiType.Struct.of(required("fdname", QapiType.STR)),
        a -> {
          backend.closefd(a.get("fdname").textValue());
          return null;
        });
    add(
        "migrate_cancel",
        NONE,
        a -> {
          backend.migrateCancel();
          return null;
        });
    add(
        "migrate-pause",
        NONE,
        a -> {
          backend.migratePause();
          return null;
        });
    add(
        "migrate-recover",
        QapiType.Struct.of(required("uri", QapiType.STR)),
        a -> {
          backend.migrateRecover(a.get("uri").textValue());
          return null;
        });
    add(
        "migrate-start-postcopy",
        NONE,
        a -> {
          backend.migrateStartPostcopy();
          return null;
        });
    add(
        "migrate-continue",
        QapiType.Struct.of(
            required(
                "state",
                new QapiType.Enum(Arrays.stream(dev.ferry.migration.MigrationStatus.values())
                    .map(dev.ferry.migration.MigrationStatus::qapiName)
                    .toList()))),
        a -> {
          backend.migrateContinue(dev.ferry.migration.MigrationStatus.fromQapiName(a.get("state").textValue()));
          return null;
        });
    add("query-migrate", NONE, a -> {
      var o = backend.queryMigrate().toJson();
      long[] disk = backend.diskStats();
      if (disk != null) {
        var d = o.putObject("disk").put("transferred", disk[0]).put("remaining", disk[1]).put("total", disk[2]);
        if (disk.length > 4 && disk[4] > 0) { // Ferry: the bulk phase's bytes and time, once it ended
          d.put("x-ferry-bulk-bytes", disk[3]).put("x-ferry-bulk-time-us", disk[4] / 1000);
        }
      }
      long[] lat = backend.postcopyFaultLatencyUs();
      if (lat != null) {
        o.putObject("x-ferry-postcopy-fault-latency")
            .put("count", lat[0]).put("p50-us", lat[1]).put("p99-us", lat[2]).put("max-us", lat[3]);
      }
      return o;
    });
    List<String> capNames =
        Arrays.stream(MigrationCapability.values()).map(MigrationCapability::qapiName).toList();
    add(
        "migrate-set-capabilities",
        QapiType.Struct.of(
            required(
                "capabilities",
                new QapiType.Array(
                    QapiType.Struct.of(
                        required("capability", new QapiType.Enum(capNames)),
                        required("state", QapiType.BOOL))))),
        a -> {
          List<MigrationCapabilityStatus> caps = new ArrayList<>();
          for (JsonNode n : a.get("capabilities")) {
            caps.add(MigrationCapabilityStatus.fromJson(n));
          }
          backend.setMigrateCapabilities(Collections.unmodifiableList(caps));
          return null;
        });
    add(
        "query-migrate-capabilities",
        NONE,
        a -> {
          ArrayNode arr = F.arrayNode();
          backend.queryMigrateCapabilities().forEach(c -> arr.add(c.toJson()));
          return arr;
        });
    add(
        "migrate-set-parameters",
        setParametersSchema(),
        a -> {
          backend.setMigrateParameters(MigrationParameters.fromJson(a));
          return null;
        });
    add("query-migrate-parameters", NONE, a -> backend.queryMigrateParameters().toJson());
    QapiType.Struct nameOnly = QapiType.Struct.of(required("name", QapiType.STR));
    add(
        "ferry-snapshot-save",
        nameOnly,
        a -> {
          backend.snapshotSave(a.get("name").textValue());
          return null;
        });
    add(
        "ferry-snapshot-load",
        nameOnly,
        a -> {
          backend.snapshotLoad(a.get("name").textValue());
          return null;
        });
    add(
        "ferry-snapshot-delete",
        nameOnly,
        a -> {
          backend.snapshotDelete(a.get("name").textValue());
          return null;
        });
    add(
        "ferry-query-snapshots",
        NONE,
        a -> {
          ArrayNode arr = F.arrayNode();
          for (SnapshotInfo s : backend.querySnapshots()) {
            arr.add(s.toJson());
          }
          return arr;
        });
    add("ferry-stress-check", NONE, a -> backend.stressCheck().toJson());
    add(
        "ferry-disk-check",
        NONE,
        a -> {
          dev.ferry.block.DiskCheck.Result r = backend.diskCheck();
          var o = F.objectNode().put("passed", r.passed()).put("records", r.records());
          if (r.error() != null) {
            o.put("error", r.error());
          }
          return o;
        });
    // object-add is QAPI's union ObjectOptions; the members of the types Ferry has, flat
    QapiType.Enum allowDeny = new QapiType.Enum(List.of("allow", "deny"));
    add(
        "object-add",
        QapiType.Struct.of(
            required("qom-type", new QapiType.Enum(List.of("tls-creds-x509", "authz-simple", "authz-list"))),
            required("id", QapiType.STR),
            optional("dir", QapiType.STR),
            optional("endpoint", new QapiType.Enum(List.of("server", "client"))),
            optional("verify-peer", QapiType.BOOL),
            optional("identity", QapiType.STR),
            optional("policy", allowDeny),
            optional(
                "rules",
                new QapiType.Array(
                    QapiType.Struct.of(
                        required("match", QapiType.STR),
                        optional("policy", allowDeny),
                        optional("format", new QapiType.Enum(List.of("exact", "glob"))))))),
        a -> {
          Map<String, Object> props = QmpJson.Mapper.INSTANCE.convertValue(a, new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() {});
          props.remove("qom-type");
          backend.objectAdd(a.get("qom-type").textValue(), props);
          return null;
        });
    add(
        "object-del",
        QapiType.Struct.of(required("id", QapiType.STR)),
        a -> {
          backend.objectDel(a.get("id").textValue());
          return null;
        });
    add(
        "query-cpus-fast",
        NONE,
        a -> {
          ArrayNode arr = F.arrayNode();
          backend.queryCpus().forEach(c -> arr.add(c.toJson()));
          return arr;
        });
    add(
        "ferry-query-cpu-registers",
        QapiType.Struct.of(optional("cpu-index", QapiType.INT)),
        a -> backend.cpuRegisters(a.path("cpu-index").asInt(0)).toJson());
    add(
        "calc-dirty-rate",
        QapiType.Struct.of(
            required("calc-time", QapiType.INT),
            optional("sample-pages", QapiType.INT),
            optional("mode", new QapiType.Enum(List.of("page-sampling", "dirty-ring", "dirty-bitmap")))),
        a -> {
          String mode = a.path("mode").asText("page-sampling");
          if (!mode.equals("page-sampling")) {
            throw QmpError.generic("mode '" + mode + "' is not supported by Ferry (it measures by page-sampling)");
          }
          backend.calcDirtyRate(
              a.get("calc-time").asLong(),
              a.has("sample-pages") ? a.get("sample-pages").asInt() : dev.ferry.migration.DirtyRateMeasurement.DEFAULT_SAMPLE_PAGES_PER_GIB);
          return null;
        });
    add("query-dirty-rate", NONE, a -> backend.queryDirtyRate().toJson());
    add(
        "ferry-memory-digest",
        QapiType.Struct.of(
            optional("pages", QapiType.BOOL),
            optional("block", QapiType.STR),
            optional("offset", QapiType.UINT64),
            optional("length", QapiType.UINT64)),
        a -> {
          boolean pages = a.has("pages") && a.get("pages").booleanValue();
          MemoryDigestInfo.PageWindow w = MemoryDigestInfo.PageWindow.NONE;
          if (pages) {
            w = a.has("block")
                ? new MemoryDigestInfo.PageWindow(
                    a.get("block").textValue(),
                    a.has("offset") ? a.get("offset").longValue() : 0,
                    a.has("length") ? a.get("length").longValue() : -1)
                : MemoryDigestInfo.PageWindow.ALL;
          } else if (a.has("block") || a.has("offset") || a.has("length")) {
            throw QmpError.generic("block, offset and length select page digests: they need \"pages\": true");
          }
          try {
            return MemoryDigestInfo.toJson(backend.memoryDigest(), w);
          } catch (IllegalArgumentException e) {
            throw QmpError.generic(e.getMessage());
          }
        });
    add(
        "human-monitor-command",
        QapiType.Struct.of(
            required("command-line", QapiType.STR), optional("cpu-index", QapiType.INT)),
        a -> TextNode.valueOf(hmp.executeForQmp(a.get("command-line").textValue())));
  }

  private static QapiType.Struct setParametersSchema() {
    List<QapiType.Member> members = new ArrayList<>();
    for (MigrationParameter p : MigrationParameter.values()) {
      QapiType t =
          switch (p.kind()) {
            case UINT8 -> QapiType.UINT8;
            case UINT32 -> QapiType.UINT32;
            case UINT64, SIZE -> QapiType.UINT64;
            case BOOL -> QapiType.BOOL;
            case STR -> new QapiType.StrOrNull();
            case ENUM -> new QapiType.Enum(MigrationParameter.MULTIFD_COMPRESSION_VALUES);
            case JSON_ARRAY -> new QapiType.Array(QapiType.ANY);
          };
      members.add(optional(p.wireName(), t));
    }
    return new QapiType.Struct(List.copyOf(members));
  }
}
