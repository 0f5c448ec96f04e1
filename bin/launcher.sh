# Sourced by bin/ferry and bin/ferry-kv (after bin/jdk25.sh): builds the module's jar when sources
# changed, keeps the JDK's ahead-of-time cache (JEP 483/514/515) for that jar, and starts the JVM.
#
#   ferry_launch NAME MODULE MAIN_CLASS ARGS...
#
# The AOT caches (README "Start-up") are MODULE/target/aot/NAME-GROUP-KEY.aot, one per group of
# commands (short: analyze, monitor, vmstate, help; run: the rest), KEY a hash of everything the
# JVM checks a cache against: the JDK (path, release file, size and time of its modules and libjvm),
# the class path (explicit jars in a fixed order, each with size and time) and the JVM options that
# shape the module graph (--enable-native-access, FERRY_JAVA_OPTS). A missing cache is made once,
# under the build lock, by a training run (dev.ferry.cli.StartupTraining GROUP under
# -XX:AOTCacheOutput); a changed jar, JDK or option makes a new KEY, and the old caches are
# deleted. The JVM is started with -XX:AOTCache (AOTMode auto: a cache it cannot use, truncated,
# corrupt or stale, is ignored and the run goes on without it) and -Xlog:aot=off,cds=off so that
# its notes never reach the command's output. FERRY_AOT=off runs without a cache; FERRY_AOT_DIR puts the caches elsewhere.

# The class path: the module's jar, then its runtime libraries sorted by name (a cache records the
# class path, so its order must not depend on the directory's).
ferry_classpath() { # $1 = MODULE/target, $2 = MODULE
  local cp="$1/$2.jar" f LC_ALL=C # a glob sorts by the collation: C, byte order (no sort process)
  for f in "$1"/lib/*; do [ -e "$f" ] && cp="$cp:$f"; done
  echo "$cp"
}

# Which cache and JVM options a command gets: "monitor" and "analyze" for those commands (a cache
# each: a JDK 25 JVM loads every class of its cache at start, ~0.1 s for the 2700 of one cache for
# all short commands), "short" for the other short commands (vmstate, help, version; ferry only),
# "run" for the rest (run, migrate, demo, soak; ferry-kv).
ferry_command_group() { # $1 = module, $2 = first argument of the command line
  if [ "$1" = ferry-cli ]; then
    case "${2:-}" in
      monitor|analyze) echo "$2"; return ;;
      vmstate|help|-h|--help|-V|--version|"") echo short; return ;;
    esac
  fi
  echo run
}

# JVM options of a group. Short commands: one GC thread and a small heap that grows on demand keep
# the peak RSS low, C1 alone compiles soon enough for a run of well under a second, no perf-data
# file. Long runs keep the JVM's defaults.
ferry_group_opts() { # $1 = group
  if [ "$1" != run ]; then
    echo "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms8m -Xmx1g -XX:-UsePerfData"
  fi
}

# Options for every JVM that maps a cache: JDK 25 maps a cache at a random address by default
# (ArchiveRelocationMode=1) and then patches every pointer in it, which cost a short command 20-90
# ms of its start (-Xlog:startuptime, "Genesis"); mode 0 maps it where it was made and relocates
# only when that address is taken. Not in the cache key: it does not change what the JVM checks.
ferry_aot_map_opts() {
  echo "-XX:+UnlockDiagnosticVMOptions -XX:ArchiveRelocationMode=0"
}

# The JVM options that use cache $1 (FerryChild.aotOptions gives its children the same ones).
# AOTMode stays auto: a cache the JVM cannot use is skipped. -Xlog:aot/cds=off: its notes about
# that would go to stdout, into the command's output.
ferry_aot_opts() { # $1 = cache file; one option a line
  printf '%s\n' "-XX:AOTCache=$1" -Xlog:aot=off -Xlog:cds=off $(ferry_aot_map_opts) "-Dferry.aot.cache=$1"
}

# The key of the cache for class path $1 and group $2, in FERRY_AOT_KEY, without computing it on
# every call: $3/NAME-GROUP.key keeps the key with what it was computed from (the group's options,
# FERRY_JAVA_OPTS, JAVA_HOME, the JDK's release file, the class path), and it stands while those are the same and none of
# the class path's files and the JDK's checked files is newer than the key file (bash's -nt, no
# process; a file replaced by an older one is not seen here, but the JVM itself then refuses the
# cache, which only costs the speed-up). Otherwise ferry_aot_key computes it afresh.
ferry_aot_key_cached() { # $1 = class path, $2 = group, $3 = cache dir, $4 = cache name prefix
  local file="$3/$4.key" what e key="" line fresh=1 release=""
  # the JDK's release file read with builtins: an upgrade in place keeps the package's (older)
  # mtimes, which -nt below cannot see, but always changes JAVA_RUNTIME_VERSION
  if [ -r "$JAVA_HOME/release" ]; then
    while IFS= read -r line || [ -n "$line" ]; do release+="$line;"; done <"$JAVA_HOME/release"
  fi
  what="$2|$(ferry_group_opts "$2")|${FERRY_JAVA_OPTS:-}|$JAVA_HOME|$release|$1"
  if [ -f "$file" ] && { IFS= read -r key && IFS= read -r line; } <"$file" && [ "$line" = "$what" ] && [ -n "$key" ]; then
    for e in "$JAVA_HOME/release" "$JAVA_HOME/lib/modules" "$JAVA_HOME/lib/server/libjvm.so"; do
      [ "$e" -nt "$file" ] && { fresh=0; break; }
    done
    if [ $fresh = 1 ]; then
      local IFS=:
      for e in $1; do [ "$e" -nt "$file" ] && { fresh=0; break; }; done
    fi
  else
    fresh=0
  fi
  if [ $fresh = 0 ]; then
    key=$(ferry_aot_key "$1" "$2")
    { mkdir -p "$3" && printf '%s\n%s\n' "$key" "$what" >"$file.$$" && mv -f "$file.$$" "$file"; } 2>/dev/null || rm -f "$file.$$" 2>/dev/null
  fi
  FERRY_AOT_KEY=$key
}

ferry_aot_key() { # $1 = class path, $2 = group; prints the cache key
  local e
  {
    echo "ferry-aot-1 $2 $(ferry_group_opts "$2")"
    echo "$JAVA_HOME"
    cat "$JAVA_HOME/release" 2>/dev/null
    stat -L -c '%n %s %Y' "$JAVA_HOME/lib/modules" "$JAVA_HOME/lib/server/libjvm.so" 2>/dev/null
    echo "$1"
    echo "--enable-native-access=ALL-UNNAMED ${FERRY_JAVA_OPTS:-}"
    local IFS=:
    for e in $1; do stat -L -c '%n %s %Y' "$e"; done
  } | sha256sum | cut -c1-16
}

# Makes the cache $1 for class path $2 and group $4 by a training run; on failure leaves $1.failed
# (so the next runs do not try again until the key changes) and says so once. Called under the
# build lock.
ferry_aot_train() { # $1 = cache file, $2 = class path, $3 = cache name prefix, $4 = group
  local cache=$1 dir work tmp
  dir=$(dirname "$cache")
  mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ] || return 0
  work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-aot.XXXXXX") || return 0
  tmp="${cache%.aot}.tmp.aot"
  echo "${3%-*}: building the start-up cache for $4 commands (once per build, some seconds; FERRY_AOT=off skips it) ..." >&2
  # shellcheck disable=SC2046,SC2086
  if (cd "$work" && "$JAVA_HOME/bin/java" $(ferry_group_opts "$4") ${FERRY_JAVA_OPTS:-} --enable-native-access=ALL-UNNAMED \
        -XX:AOTCacheOutput="$tmp" -cp "$2" dev.ferry.cli.StartupTraining "$4" "$work/train") >"$cache.log" 2>&1 \
     && [ -s "$tmp" ]; then
    # caches of other keys (an older jar or JDK) are stale: delete them, with their logs and marks
    find "$dir" -maxdepth 1 -name "$3-????????????????.aot*" ! -name "$(basename "$cache")*" -delete 2>/dev/null
    mv -f "$tmp" "$cache"
  else
    rm -f "$tmp"
    touch "$cache.failed"
    echo "${3%-*}: the start-up cache could not be built (see $cache.log); running without it" >&2
  fi
  rm -rf "$work"
}

ferry_launch() { # $1 = program name, $2 = module, $3 = main class, then the command's arguments
  local name=$1 module=$2 main=$3
  shift 3
  local target="$root/$module/target"
  local jar="$target/$module.jar"
  # one build (and one training) at a time when several commands start together
  exec 9>"$root/.ferry-build.lock"
  flock 9
  if [ ! -f "$jar" ] || [ ! -d "$target/lib" ] || \
     [ -n "$(find "$root" -path "$root/ferry-bench" -prune -o \( -name '*.java' -o -name 'pom.xml' -o -path '*/src/main/resources/*' \) -newer "$jar" -print -quit)" ]; then
    echo "$name: building (first run or sources changed) ..." >&2
    (cd "$root" && ./mvnw -B -q -ntp -pl "$module" -am -DskipTests package >&2) || { echo "$name: build failed" >&2; exit 1; }
    touch "$jar"
  fi
  local cp aot=() cache group
  cp=$(ferry_classpath "$target" "$module")
  group=$(ferry_command_group "$module" "${1:-}")
  if [ "${FERRY_AOT:-on}" != off ]; then
    ferry_aot_key_cached "$cp" "$group" "${FERRY_AOT_DIR:-$target/aot}" "$name-$group"
    cache="${FERRY_AOT_DIR:-$target/aot}/$name-$group-$FERRY_AOT_KEY.aot"
    if [ ! -s "$cache" ] && [ ! -e "$cache.failed" ]; then
      ferry_aot_train "$cache" "$cp" "$name-$group" "$group"
    fi
    if [ -s "$cache" ]; then
      # -Dferry.aot.cache: the ferry run children of demo and soak use the same cache (FerryChild)
      mapfile -t aot < <(ferry_aot_opts "$cache")
    fi
  fi
  flock -u 9
  exec 9>&-
  # shellcheck disable=SC2046,SC2086
  exec "$JAVA_HOME/bin/java" $(ferry_group_opts "$group") "${aot[@]}" ${FERRY_JAVA_OPTS:-} --enable-native-access=ALL-UNNAMED \
    -cp "$cp" "$main" "$@"
}
