package dev.ferry.transport;

import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Who may connect, by the distinguished name of the client's certificate (QEMU's {@code authz-list}
 * and {@code authz-simple} objects). A TLS server asks {@link #isAllowed} during the handshake, so a
 * refused client never gets past it; an edit ({@link AuthzList#setRules}) applies from the next
 * handshake on.
 *
 * <p>Names are compared in RFC 4514 form as GnuTLS prints them, which is also what the JDK's {@code
 * X500Principal.getName()} gives: {@code CN=client.example.com,O=Example,C=GB}.
 */
public sealed interface Authz permits Authz.Simple, Authz.AuthzList {

  /** The object's id. */
  String id();

  /** Whether {@code identity} (a certificate subject DN, RFC 4514) may connect. */
  boolean isAllowed(String identity);

  /** {@code authz-simple}: exactly one identity is allowed. */
  record Simple(String id, String identity) implements Authz {
    public Simple {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(identity, "identity");
    }

    @Override
    public boolean isAllowed(String candidate) {
      return identity.equals(candidate);
    }
  }

  /** {@code allow} or {@code deny} (QAPI {@code QAuthZListPolicy}). */
  enum Policy {
    ALLOW,
    DENY;

    public String qapiName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static Policy fromQapiName(String s) {
      return switch (s) {
        case "allow" -> ALLOW;
        case "deny" -> DENY;
        default ->
            throw new IllegalArgumentException(
                "Parameter 'policy' does not accept value '" + s + "' (expected allow or deny)");
      };
    }
  }

  /** How a rule matches (QAPI {@code QAuthZListFormat}): the exact name, or a glob with * and ?. */
  enum Format {
    EXACT,
    GLOB;

    public String qapiName() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static Format fromQapiName(String s) {
      return switch (s) {
        case "exact" -> EXACT;
        case "glob" -> GLOB;
        default ->
            throw new IllegalArgumentException(
                "Parameter 'format' does not accept value '" + s + "' (expected exact or glob)");
      };
    }
  }

  /** One rule of an {@code authz-list} (QAPI {@code QAuthZListRule}). */
  record Rule(String match, Policy policy, Format format) {
    public Rule {
      Objects.requireNonNull(match, "match");
      Objects.requireNonNull(policy, "policy");
      Objects.requireNonNull(format, "format");
    }

    boolean matches(String identity) {
      return format == Format.EXACT ? match.equals(identity) : glob(match).matcher(identity).matches();
    }

    /** fnmatch(3) without character classes, as QEMU's authz-list uses it. */
    private static Pattern glob(String g) {
      StringBuilder re = new StringBuilder();
      for (int i = 0; i < g.length(); i++) {
        char c = g.charAt(i);
        switch (c) {
          case '*' -> re.append(".*");
          case '?' -> re.append('.');
          default -> re.append(Pattern.quote(String.valueOf(c)));
        }
      }
      return Pattern.compile(re.toString(), Pattern.DOTALL);
    }
  }

  /**
   * {@code authz-list}: the first rule that matches decides; when none does, the list's own policy
   * (QEMU's default: deny). Rules can be replaced while in use; the next handshake sees the new ones.
   */
  final class AuthzList implements Authz {
    private final String id;
    private volatile Policy policy;
    private volatile List<Rule> rules;

    public AuthzList(String id, Policy policy, List<Rule> rules) {
      this.id = Objects.requireNonNull(id, "id");
      this.policy = Objects.requireNonNull(policy, "policy");
      this.rules = List.copyOf(rules);
    }

    @Override
    public String id() {
      return id;
    }

    public Policy policy() {
      return policy;
    }

    public List<Rule> rules() {
      return rules;
    }

    /** Replaces the rules (QEMU: {@code qom-set ID rules [...]}); applies to the next connection. */
    public void setRules(List<Rule> rules) {
      this.rules = List.copyOf(rules);
    }

    public void setPolicy(Policy policy) {
      this.policy = Objects.requireNonNull(policy, "policy");
    }

    @Override
    public boolean isAllowed(String identity) {
      for (Rule r : rules) {
        if (r.matches(identity)) {
          return r.policy() == Policy.ALLOW;
        }
      }
      return policy == Policy.ALLOW;
    }

    @Override
    public String toString() {
      return "authz-list[id=" + id + ", policy=" + policy.qapiName() + ", rules=" + rules + "]";
    }
  }
}
