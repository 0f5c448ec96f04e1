package dev.ferry.kv;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The commands ferry-kv answers, with Redis's arity (positive: exactly that many words with the
 * name; negative: at least that many) and where they run: on the keyspace in a guest step ({@link
 * Access#WRITE}, {@link Access#READ}), or on the connection thread ({@link Access#NONE}). Checked
 * before anything runs, as Redis checks its command table.
 */
public enum KvCommand {
  PING(-1, Access.NONE),
  ECHO(2, Access.NONE),
  SELECT(2, Access.NONE),
  QUIT(-1, Access.NONE),
  CONFIG(-2, Access.NONE),
  COMMAND(-1, Access.NONE),
  CLIENT(-2, Access.NONE),
  HELLO(-1, Access.NONE),
  GET(2, Access.READ),
  EXISTS(-2, Access.READ),
  MGET(-2, Access.READ),
  TTL(2, Access.READ),
  PTTL(2, Access.READ),
  DBSIZE(1, Access.READ),
  INFO(-1, Access.INFO),
  SET(-3, Access.WRITE),
  SETNX(3, Access.WRITE),
  MSET(-3, Access.WRITE),
  DEL(-2, Access.WRITE),
  INCR(2, Access.WRITE),
  DECR(2, Access.WRITE),
  INCRBY(3, Access.WRITE),
  DECRBY(3, Access.WRITE),
  FLUSHALL(-1, Access.WRITE),
  FLUSHDB(-1, Access.WRITE);

  /** Where a command runs. */
  public enum Access {
    /** no keyspace: answered on the connection thread */
    NONE,
    /** reads the keyspace (and may remove an expired key) */
    READ,
    /** changes the keyspace */
    WRITE,
    /** server information: reads the keyspace's counters, answered also by a source whose keyspace moved away */
    INFO
  }

  private static final Map<String, KvCommand> BY_NAME = new HashMap<>();

  static {
    for (KvCommand c : values()) {
      BY_NAME.put(c.lowerName, c);
    }
  }

  private final int arity;
  private final Access access;
  private final String lowerName = name().toLowerCase(Locale.ROOT);

  KvCommand(int arity, Access access) {
    this.arity = arity;
    this.access = access;
  }

  /** The command named {@code lowerName} (lower case), or null. */
  public static KvCommand byName(String lowerName) {
    return BY_NAME.get(lowerName);
  }

  public int arity() {
    return arity;
  }

  public Access access() {
    return access;
  }

  /** The name as Redis writes it in errors (lower case). */
  public String lowerName() {
    return lowerName;
  }

  /** Whether {@code words} words (name included) fit the arity. */
  public boolean arityAllows(int words) {
    return arity >= 0 ? words == arity : words >= -arity;
  }
}
