package dev.ferry.transport;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The user-created objects TLS needs, by id (QEMU's {@code /objects} container, for the types Ferry
 * has): {@code tls-creds-x509}, {@code authz-simple} and {@code authz-list}. Created from {@code
 * ferry run --object TYPE,id=ID,...} or QMP {@code object-add}, removed with {@code object-del};
 * migration parameters and monitors name them by id and look them up at each connection, so a
 * replaced object applies from the next connection on. Thread-safe.
 */
public final class TlsObjects {
  public static final String TLS_CREDS_X509 = "tls-creds-x509";
  public static final String AUTHZ_SIMPLE = "authz-simple";
  public static final String AUTHZ_LIST = "authz-list";

  private final Map<String, Object> objects = new ConcurrentHashMap<>();

  /** The ids in use. */
  public Set<String> ids() {
    return Set.copyOf(objects.keySet());
  }

  /**
   * Creates an object of {@code qomType} from {@code props} ({@code id} among them; values are
   * Strings, Booleans, and for {@code authz-list}'s {@code rules} a List of Maps), as {@code
   * object-add} gets them.
   *
   * @throws IllegalArgumentException one line, worded as QEMU's: an unknown type or property, a
   *     missing or duplicate id, a bad value
   * @throws IOException when credentials cannot be loaded (the message names the file)
   */
  public Object add(String qomType, Map<String, ?> props) throws IOException {
    Map<String, Object> p = new LinkedHashMap<>(props);
    Object idValue = p.remove("id");
    if (!(idValue instanceof String id) || id.isEmpty()) {
      throw new IllegalArgumentException("Parameter 'id' is missing");
    }
    if (!id.matches("[A-Za-z][A-Za-z0-9._-]*")) {
      throw new IllegalArgumentException(
          "Parameter 'id' expects an identifier (a letter, then letters, digits, '-', '.', '_')");
    }
    if (objects.containsKey(id)) {
      throw new IllegalArgumentException("attempt to add duplicate property '" + id + "' to object (type 'container')");
    }
    Object o =
        switch (qomType) {
          case TLS_CREDS_X509 -> {
            String dir = string(p.remove("dir"), "dir");
            if (dir == null) {
              throw new IllegalArgumentException("Parameter 'dir' is missing");
            }
            String endpoint = string(p.remove("endpoint"), "endpoint");
            Object vp = p.remove("verify-peer");
            boolean verify = vp == null || bool(vp, "verify-peer");
            noneLeft(qomType, p);
            yield TlsCredentials.load(
                id,
                Path.of(dir),
                TlsCredentials.Endpoint.fromQapiName(endpoint == null ? "client" : endpoint),
                verify);
          }
          case AUTHZ_SIMPLE -> {
            String identity = string(p.remove("identity"), "identity");
            if (identity == null) {
              throw new IllegalArgumentException("Parameter 'identity' is missing");
            }
            noneLeft(qomType, p);
            yield new Authz.Simple(id, identity);
          }
          case AUTHZ_LIST -> {
            String policy = string(p.remove("policy"), "policy");
            List<Authz.Rule> rules = rules(p.remove("rules"));
            noneLeft(qomType, p);
            yield new Authz.AuthzList(
                id, policy == null ? Authz.Policy.DENY : Authz.Policy.fromQapiName(policy), rules);
          }
          default ->
              throw new IllegalArgumentException(
                  "invalid object type: " + qomType + " (Ferry has tls-creds-x509, authz-simple, authz-list)");
        };
    if (objects.putIfAbsent(id, o) != null) {
      throw new IllegalArgumentException("attempt to add duplicate property '" + id + "' to object (type 'container')");
    }
    return o;
  }

  /** Adds an object built in code (tests, embedders); the id must be free. */
  public void add(TlsCredentials creds) {
    put(creds.id(), creds);
  }

  /** Adds an authz object built in code; the id must be free. */
  public void add(Authz authz) {
    put(authz.id(), authz);
  }

  private void put(String id, Object o) {
    if (objects.putIfAbsent(id, o) != null) {
      throw new IllegalArgumentException("attempt to add duplicate property '" + id + "' to object (type 'container')");
    }
  }

  /** {@code object-del}: IllegalArgumentException when there is no such object. */
  public void delete(String id) {
    if (objects.remove(id) == null) {
      throw new IllegalArgumentException("object '" + id + "' not found");
    }
  }

  /**
   * The credentials {@code id}, which must be for {@code endpoint}.
   *
   * @throws IllegalArgumentException QEMU's words: no such object, wrong type, wrong endpoint
   */
  public TlsCredentials credentials(String id, TlsCredentials.Endpoint endpoint) {
    Object o = objects.get(id);
    if (o == null) {
      throw new IllegalArgumentException("No TLS credentials with id '" + id + "'");
    }
    if (!(o instanceof TlsCredentials c)) {
      throw new IllegalArgumentException("Object with id '" + id + "' is not TLS credentials");
    }
    if (c.endpoint() != endpoint) {
      throw new IllegalArgumentException(
          "Expected TLS credentials for a " + endpoint.qapiName() + " endpoint");
    }
    return c;
  }

  /** The authorization object {@code id}; IllegalArgumentException when there is none. */
  public Authz authz(String id) {
    Object o = objects.get(id);
    if (!(o instanceof Authz a)) {
      throw new IllegalArgumentException("Cannot find QAuthZ object ID " + id);
    }
    return a;
  }

  /**
   * Parses QEMU's {@code -object} option syntax, {@code TYPE,key=value,...} ({@code ,,} is a comma
   * inside a value; {@code rules.N.match=...} builds authz-list's rules), and adds the object.
   *
   * @throws IllegalArgumentException for bad syntax or a bad object (one line)
   * @throws IOException when credentials cannot be loaded
   */
  public Object addFromOption(String option) throws IOException {
    ObjectOption o = parseOption(option);
    return add(o.qomType(), o.props());
  }

  /** An {@code -object} option parsed: the type, and the properties as {@code object-add} takes them. */
  public record ObjectOption(String qomType, Map<String, Object> props) {}

  /**
   * Parses QEMU's {@code -object} / HMP {@code object_add} syntax (see {@link #addFromOption}).
   *
   * @throws IllegalArgumentException for bad syntax (one line)
   */
  public static ObjectOption parseOption(String option) {
    List<String> parts = splitKeyval(option);
    if (parts.isEmpty() || parts.get(0).isEmpty() || parts.get(0).contains("=")) {
      throw new IllegalArgumentException("an object needs TYPE,id=ID,... ; got '" + option + "'");
    }
    String type = parts.get(0);
    Map<String, Object> props = new LinkedHashMap<>();
    TreeMap<Integer, Map<String, Object>> rules = new TreeMap<>();
    for (String kv : parts.subList(1, parts.size())) {
      int eq = kv.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("Expected '=' after parameter '" + kv + "'");
      }
      String key = kv.substring(0, eq);
      String value = kv.substring(eq + 1);
      if (key.startsWith("rules.")) {
        String[] k = key.split("\\.", 3);
        int index;
        try {
          index = Integer.parseInt(k.length == 3 ? k[1] : "x");
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("Bad rule key '" + key + "' (expected rules.N.match, rules.N.policy, rules.N.format)");
        }
        rules.computeIfAbsent(index, i -> new LinkedHashMap<>()).put(k[2], value);
      } else if (props.put(key, value) != null) {
        throw new IllegalArgumentException("Parameter '" + key + "' given twice");
      }
    }
    if (!rules.isEmpty()) {
      props.put("rules", new ArrayList<>(rules.values()));
    }
    return new ObjectOption(type, props);
  }

  /**
   * QEMU's keyval split (its {@code -object} and {@code -drive} option syntax): commas separate, a
   * doubled comma is a literal one.
   */
  public static List<String> splitKeyval(String s) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == ',') {
        if (i + 1 < s.length() && s.charAt(i + 1) == ',') {
          cur.append(',');
          i++;
        } else {
          out.add(cur.toString());
          cur.setLength(0);
        }
      } else {
        cur.append(c);
      }
    }
    out.add(cur.toString());
    return out;
  }

  private static List<Authz.Rule> rules(Object v) {
    if (v == null) {
      return List.of();
    }
    if (!(v instanceof List<?> list)) {
      throw new IllegalArgumentException("Invalid parameter type for 'rules', expected: array");
    }
    List<Authz.Rule> rules = new ArrayList<>();
    for (Object o : list) {
      if (!(o instanceof Map<?, ?> m)) {
        throw new IllegalArgumentException("Invalid parameter type for 'rules', expected: array of objects");
      }
      Map<Object, Object> r = new LinkedHashMap<>(m);
      String match = string(r.remove("match"), "match");
      if (match == null) {
        throw new IllegalArgumentException("Parameter 'match' is missing");
      }
      String policy = string(r.remove("policy"), "policy");
      String format = string(r.remove("format"), "format");
      if (!r.isEmpty()) {
        throw new IllegalArgumentException("Parameter '" + r.keySet().iterator().next() + "' is unexpected");
      }
      rules.add(
          new Authz.Rule(
              match,
              policy == null ? Authz.Policy.DENY : Authz.Policy.fromQapiName(policy),
              format == null ? Authz.Format.EXACT : Authz.Format.fromQapiName(format)));
    }
    return rules;
  }

  private static String string(Object v, String name) {
    if (v == null || v instanceof String) {
      return (String) v;
    }
    throw new IllegalArgumentException("Invalid parameter type for '" + name + "', expected: string");
  }

  private static boolean bool(Object v, String name) {
    return switch (v) {
      case Boolean b -> b;
      case String s when s.equals("on") || s.equals("yes") || s.equals("true") -> true;
      case String s when s.equals("off") || s.equals("no") || s.equals("false") -> false;
      default ->
          throw new IllegalArgumentException(
              "Parameter '" + name + "' expects 'on' or 'off'");
    };
  }

  private static void noneLeft(String type, Map<String, Object> p) {
    if (!p.isEmpty()) {
      throw new IllegalArgumentException(
          "Property '" + type + "." + p.keySet().iterator().next() + "' not found");
    }
  }
}
