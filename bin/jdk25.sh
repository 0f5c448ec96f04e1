# Sourced by bin/ferry, bin/test and .ci/run: finds a JDK 25 and exports JAVA_HOME for it.
# Order: FERRY_JAVA_HOME, JAVA_HOME, the java on PATH, then the usual install folders
# (/usr/lib/jvm, /usr/java, /opt, ~/.sdkman, ~/.jdks). Prints one line and exits 1 when none is found.
ferry_java_feature() { # prints the feature release of "$1/bin/java" (e.g. 25), or nothing
  [ -x "$1/bin/java" ] || return 0
  # the JDK's release file answers without starting a JVM (which costs every command ~0.1 s), read
  # with bash's own read (no process: bin/ferry runs this on every command)
  local line v
  if [ -f "$1/release" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      if [[ $line =~ ^JAVA_VERSION=\"([0-9]+) ]]; then
        v=${BASH_REMATCH[1]}
        break
      fi
    done <"$1/release"
    if [ -n "${v:-}" ]; then echo "$v"; return 0; fi
  fi
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}
ferry_find_jdk25() {
  local c
  for c in "${FERRY_JAVA_HOME:-}" "${JAVA_HOME:-}"; do
    if [ -n "$c" ] && [ "$(ferry_java_feature "$c")" = 25 ] && [ -x "$c/bin/javac" ]; then echo "$c"; return 0; fi
  done
  if command -v java >/dev/null 2>&1; then
    c=$(readlink -f "$(command -v java)"); c=${c%/*}; c=${c%/*} # JDK/bin/java -> JDK
    if [ "$(ferry_java_feature "$c")" = 25 ] && [ -x "$c/bin/javac" ]; then echo "$c"; return 0; fi
  fi
  for c in /usr/lib/jvm/* /usr/java/* /opt/*jdk* /opt/java/* "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
    [ -d "$c" ] || continue
    if [ "$(ferry_java_feature "$c")" = 25 ] && [ -x "$c/bin/javac" ]; then echo "$c"; return 0; fi
  done
  return 1
}
if ! FERRY_JDK=$(ferry_find_jdk25); then
  echo "ferry: no JDK 25 found (looked at FERRY_JAVA_HOME, JAVA_HOME, PATH, /usr/lib/jvm, /usr/java, /opt, ~/.sdkman, ~/.jdks); install one or set FERRY_JAVA_HOME" >&2
  exit 1
fi
export JAVA_HOME="$FERRY_JDK"
