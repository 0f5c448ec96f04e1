package dev.ferry.kv;

import dev.ferry.kv.resp.RespWriter;
import dev.ferry.kv.store.KvException;
import dev.ferry.kv.store.KvState;
import dev.ferry.kv.store.KvTable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What each {@link KvCommand} does, with Redis's replies and error texts. Keyspace commands run on
 * a {@link KvTable} view inside a guest step ({@link #runKeyspace}); the others on the connection
 * thread ({@link #runLocal}).
 */
final class KvCommands {
  /** The version ferry-kv says it is (INFO, HELLO): the Redis protocol and commands it follows. */
  static final String REDIS_VERSION = "7.0.0";

  /** Text of the error a source answers keyspace commands with once its keyspace moved away. */
  static final String MIGRATED =
      "READONLY ferry-kv migrated this keyspace to another host (switch-over done); reconnect to the destination";

  private KvCommands() {}

  /** What INFO and CONFIG tell about the server (not guest state). */
  record ServerView(int port, long regionBytes, long startedAtMs, int connectedClients, String runState) {}

  /** The error for a command word that is no command, as Redis 7 words it. */
  static String unknownCommand(List<byte[]> args) {
    StringBuilder b = new StringBuilder("ERR unknown command '").append(clip(args.getFirst())).append("', with args beginning with: ");
    for (int i = 1; i < args.size() && b.length() < 1024; i++) {
      b.append('\'').append(clip(args.get(i))).append("' ");
    }
    return b.toString();
  }

  static String wrongArity(KvCommand c) {
    return "ERR wrong number of arguments for '" + c.lowerName() + "' command";
  }

  private static String clip(byte[] b) {
    String s = new String(b, 0, Math.min(b.length, 128), StandardCharsets.ISO_8859_1);
    StringBuilder out = new StringBuilder();
    for (char c : s.toCharArray()) {
      out.append(c >= 0x20 && c < 0x7f && c != '\'' ? c : ' ');
    }
    return out.toString();
  }

  // ---------------------------------------------------------------- keyspace commands

  /**
   * Runs a keyspace command ({@link KvCommand.Access#READ}, {@code WRITE} or {@code INFO}) on
   * {@code table}; {@link KvException}s become error replies.
   */
  static void runKeyspace(KvCommand c, List<byte[]> a, KvTable table, KvState state, long nowMs, ServerView server, RespWriter out) {
    try {
      switch (c) {
        case GET -> bulkOrNull(table.get(a.get(1), nowMs), out);
        case EXISTS -> {
          long n = 0;
          for (int i = 1; i < a.size(); i++) {
            n += table.exists(a.get(i), nowMs) ? 1 : 0;
          }
          out.integer(n);
        }
        case MGET -> {
          out.array(a.size() - 1);
          for (int i = 1; i < a.size(); i++) {
            bulkOrNull(table.get(a.get(i), nowMs), out);
          }
        }
        case TTL -> {
          long ms = table.pttl(a.get(1), nowMs);
          out.integer(ms < 0 ? ms : (ms + 500) / 1000);
        }
        case PTTL -> out.integer(table.pttl(a.get(1), nowMs));
        case DBSIZE -> out.integer(table.size());
        case INFO -> info(a, table, state, server, out);
        case SET -> set(a, table, nowMs, out);
        case SETNX -> out.integer(table.set(a.get(1), a.get(2), 0, KvTable.Condition.IF_MISSING, nowMs) ? 1 : 0);
        case MSET -> {
          if (a.size() % 2 != 1) {
            out.error(wrongArity(c));
            return;
          }
          for (int i = 1; i < a.size(); i += 2) {
            table.set(a.get(i), a.get(i + 1), 0, KvTable.Condition.ALWAYS, nowMs);
          }
          out.simple("OK");
        }
        case DEL -> {
          long n = 0;
          for (int i = 1; i < a.size(); i++) {
            n += table.delete(a.get(i), nowMs) ? 1 : 0;
          }
          out.integer(n);
        }
        case INCR -> out.integer(table.incrBy(a.get(1), 1, nowMs));
        case DECR -> out.integer(table.incrBy(a.get(1), -1, nowMs));
        case INCRBY -> out.integer(table.incrBy(a.get(1), KvTable.parseInteger(a.get(2)), nowMs));
        case DECRBY -> {
          long by = KvTable.parseInteger(a.get(2));
          if (by == Long.MIN_VALUE) {
            throw new KvException("ERR decrement would overflow");
          }
          out.integer(table.incrBy(a.get(1), -by, nowMs));
        }
        case FLUSHALL, FLUSHDB -> {
          if (a.size() > 2 || (a.size() == 2 && !word(a.get(1)).matches("async|sync"))) {
            out.error("ERR syntax error");
            return;
          }
          table.format();
          out.simple("OK");
        }
        default -> throw new IllegalArgumentException(c + " is no keyspace command");
      }
    } catch (KvException e) {
      out.error(e.getMessage());
    }
  }

  /** A value, or {@code $-1} for a missing key. */
  private static void bulkOrNull(byte[] v, RespWriter out) {
    if (v == null) {
      out.nullBulk();
    } else {
      out.bulk(v);
    }
  }

  /** SET key value [NX|XX] [EX seconds|PX milliseconds|KEEPTTL]. */
  private static void set(List<byte[]> a, KvTable table, long nowMs, RespWriter out) {
    KvTable.Condition condition = KvTable.Condition.ALWAYS;
    long expireAtMs = 0;
    boolean expirySet = false;
    for (int i = 3; i < a.size(); i++) {
      String opt = word(a.get(i));
      switch (opt) {
        case "nx", "xx" -> {
          if (condition != KvTable.Condition.ALWAYS) {
            out.error("ERR syntax error");
            return;
          }
          condition = opt.equals("nx") ? KvTable.Condition.IF_MISSING : KvTable.Condition.IF_PRESENT;
        }
        case "ex", "px" -> {
          if (expirySet || i + 1 >= a.size()) {
            out.error("ERR syntax error");
            return;
          }
          long n = KvTable.parseInteger(a.get(++i));
          long unitMs = opt.equals("ex") ? 1000 : 1;
          if (n <= 0 || n > (Long.MAX_VALUE - nowMs) / unitMs) {
            out.error("ERR invalid expire time in 'set' command");
            return;
          }
          expireAtMs = nowMs + n * unitMs;
          expirySet = true;
        }
        case "keepttl" -> {
          if (expirySet) {
            out.error("ERR syntax error");
            return;
          }
          expireAtMs = KvTable.KEEP_TTL;
          expirySet = true;
        }
        default -> {
          out.error("ERR syntax error");
          return;
        }
      }
    }
    if (table.set(a.get(1), a.get(2), expireAtMs, condition, nowMs)) {
      out.simple("OK");
    } else {
      out.nullBulk();
    }
  }

  private static void info(List<byte[]> a, KvTable table, KvState state, ServerView server, RespWriter out) {
    String section = a.size() > 1 ? word(a.get(1)) : "default";
    boolean all = section.equals("default") || section.equals("all") || section.equals("everything");
    StringBuilder b = new StringBuilder();
    if (all || section.equals("server")) {
      b.append("# Server\r\n")
          .append("redis_version:").append(REDIS_VERSION).append("\r\n")
          .append("redis_mode:standalone\r\n")
          .append("ferry_kv:1\r\n")
          .append("ferry_run_state:").append(server.runState()).append("\r\n")
          .append("tcp_port:").append(server.port()).append("\r\n")
          .append("uptime_in_seconds:").append((System.currentTimeMillis() - server.startedAtMs()) / 1000).append("\r\n\r\n");
    }
    if (all || section.equals("clients")) {
      b.append("# Clients\r\nconnected_clients:").append(server.connectedClients()).append("\r\n\r\n");
    }
    if (all || section.equals("memory")) {
      b.append("# Memory\r\n")
          .append("used_memory:").append(table.usedBytes()).append("\r\n")
          .append("maxmemory:").append(server.regionBytes()).append("\r\n")
          .append("maxmemory_policy:noeviction\r\n\r\n");
    }
    if (all || section.equals("stats")) {
      b.append("# Stats\r\n")
          .append("total_commands_processed:").append(state.commandsProcessed).append("\r\n")
          .append("expired_keys:").append(state.expiredKeys).append("\r\n")
          .append("keyspace_hits:").append(state.keyspaceHits).append("\r\n")
          .append("keyspace_misses:").append(state.keyspaceMisses).append("\r\n\r\n");
    }
    if (all || section.equals("keyspace")) {
      b.append("# Keyspace\r\n");
      if (state.keyCount > 0) {
        b.append("db0:keys=").append(state.keyCount).append(",expires=").append(state.expiresCount).append(",avg_ttl=0\r\n");
      }
    }
    out.bulk(b.toString());
  }

  // ---------------------------------------------------------------- connection-thread commands

  /** Runs a command of {@link KvCommand.Access#NONE}; true when the connection is to close after the reply (QUIT). */
  static boolean runLocal(KvCommand c, List<byte[]> a, ServerView server, long clientId, RespWriter out) {
    switch (c) {
      case PING -> {
        if (a.size() > 2) {
          out.error(wrongArity(c));
        } else if (a.size() == 2) {
          out.bulk(a.get(1));
        } else {
          out.simple("PONG");
        }
      }
      case ECHO -> out.bulk(a.get(1));
      case SELECT -> {
        String db = new String(a.get(1), StandardCharsets.ISO_8859_1);
        if (!db.matches("-?[0-9]{1,10}")) {
          out.error("ERR value is not an integer or out of range");
        } else if (!db.equals("0")) {
          out.error("ERR DB index is out of range");
        } else {
          out.simple("OK");
        }
      }
      case QUIT -> {
        out.simple("OK");
        return true;
      }
      case CONFIG -> config(a, server, out);
      case COMMAND -> {
        String sub = a.size() > 1 ? word(a.get(1)) : "";
        if (sub.equals("count")) {
          out.integer(KvCommand.values().length);
        } else {
          out.array(0); // COMMAND, COMMAND DOCS (redis-cli's hints), COMMAND INFO: nothing to describe
        }
      }
      case CLIENT -> {
        String sub = word(a.get(1));
        switch (sub) {
          case "setname", "setinfo", "reply", "no-evict", "no-touch" -> out.simple("OK");
          case "getname" -> out.nullBulk();
          case "id" -> out.integer(clientId);
          default -> out.error("ERR unknown subcommand '" + clip(a.get(1)) + "'. Try CLIENT HELP.");
        }
      }
      case HELLO -> {
        if (a.size() > 1 && !new String(a.get(1), StandardCharsets.ISO_8859_1).equals("2")) {
          out.error("NOPROTO sorry, this protocol version is not supported.");
        } else {
          out.array(14)
              .bulk("server").bulk("redis")
              .bulk("version").bulk(REDIS_VERSION)
              .bulk("proto").integer(2)
              .bulk("id").integer(clientId)
              .bulk("mode").bulk("standalone")
              .bulk("role").bulk("master")
              .bulk("modules").array(0);
        }
      }
      default -> throw new IllegalArgumentException(c + " runs on the keyspace");
    }
    return false;
  }

  private static void config(List<byte[]> a, ServerView server, RespWriter out) {
    String sub = word(a.get(1));
    switch (sub) {
      case "get" -> {
        if (a.size() < 3) {
          out.error("ERR wrong number of arguments for 'config|get' command");
          return;
        }
        Map<String, String> all = new LinkedHashMap<>();
        all.put("save", "");
        all.put("appendonly", "no");
        all.put("databases", "1");
        all.put("maxmemory", Long.toString(server.regionBytes()));
        all.put("maxmemory-policy", "noeviction");
        all.put("port", Integer.toString(server.port()));
        List<String> hits = new ArrayList<>();
        for (int i = 2; i < a.size(); i++) {
          Pattern p = glob(word(a.get(i)));
          for (Map.Entry<String, String> e : all.entrySet()) {
            if (p.matcher(e.getKey()).matches() && !hits.contains(e.getKey())) {
              hits.add(e.getKey());
            }
          }
        }
        out.array(hits.size() * 2);
        for (String k : hits) {
          out.bulk(k).bulk(all.get(k));
        }
      }
      case "resetstat" -> out.simple("OK");
      case "set" -> out.error("ERR CONFIG SET is not supported by ferry-kv (its configuration comes from the command line)");
      default -> out.error("ERR unknown subcommand '" + clip(a.get(1)) + "'. Try CONFIG HELP.");
    }
  }

  /** A Redis glob (* ? and [..]) as a regex. */
  private static Pattern glob(String g) {
    StringBuilder r = new StringBuilder();
    for (char ch : g.toCharArray()) {
      switch (ch) {
        case '*' -> r.append(".*");
        case '?' -> r.append('.');
        case '[', ']' -> r.append(ch);
        default -> r.append(Pattern.quote(String.valueOf(ch)));
      }
    }
    try {
      return Pattern.compile(r.toString());
    } catch (java.util.regex.PatternSyntaxException e) {
      return Pattern.compile(Pattern.quote(g));
    }
  }

  private static String word(byte[] b) {
    return new String(b, StandardCharsets.ISO_8859_1).toLowerCase(Locale.ROOT);
  }
}
