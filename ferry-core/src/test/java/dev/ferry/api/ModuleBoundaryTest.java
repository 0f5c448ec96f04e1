package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.lang.module.Configuration;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ferry-core's module boundary, on the real module graph: the compiled {@code dev.ferry.core}
 * (target/classes with its module-info) is resolved in a layer of its own, as an application
 * would load it.
 *
 * <ul>
 *   <li>Only the API packages are exported to everyone; the internals only to Ferry's own modules.
 *   <li>No public signature of an exported type names a type the module does not export (the
 *       "leak" check), and the check itself finds the leaks of an internal class.
 *   <li>A user module compiled against ferry-core can use the API and cannot use an internal
 *       package.
 * </ul>
 */
class ModuleBoundaryTest {
  static final Set<String> API_PACKAGES = Set.of("dev.ferry.api", "dev.ferry.vmstate");
  static final Set<String> FERRY_MODULES = Set.of("dev.ferry.qmp", "dev.ferry.cli", "dev.ferry.bench");

  private static Path classes;
  private static List<Path> modulePath;
  private static Module core;

  @BeforeAll
  static void resolveTheModule() throws IOException {
    classes = Path.of("target", "classes").toAbsolutePath();
    assertThat(classes.resolve("module-info.class")).exists();
    modulePath = new ArrayList<>(List.of(classes));
    // the module's own dependencies, from the test class path (slf4j-api, HdrHistogram, zstd-jni)
    for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
      String name = Path.of(e).getFileName().toString();
      if (name.startsWith("slf4j-api") || name.startsWith("HdrHistogram") || name.startsWith("zstd-jni")) {
        modulePath.add(Path.of(e));
      }
    }
    ModuleFinder finder = ModuleFinder.of(modulePath.toArray(Path[]::new));
    Configuration cf =
        ModuleLayer.boot().configuration().resolve(finder, ModuleFinder.of(), Set.of("dev.ferry.core"));
    ModuleLayer layer =
        ModuleLayer.boot().defineModulesWithOneLoader(cf, ClassLoader.getPlatformClassLoader());
    core = layer.findModule("dev.ferry.core").orElseThrow();
  }

  @Test
  void onlyTheApiPackagesAreExportedToEveryone() {
    ModuleDescriptor d = core.getDescriptor();
    Set<String> unqualified =
        d.exports().stream().filter(e -> !e.isQualified()).map(ModuleDescriptor.Exports::source).collect(Collectors.toSet());
    assertThat(unqualified).isEqualTo(API_PACKAGES);
    for (ModuleDescriptor.Exports e : d.exports()) {
      if (e.isQualified()) {
        assertThat(e.targets()).as("targets of %s", e.source()).isSubsetOf(FERRY_MODULES);
      }
    }
    assertThat(d.opens()).isEmpty();
    for (String p : core.getPackages()) {
      assertThat(core.isExported(p)).as("%s exported to everyone", p).isEqualTo(API_PACKAGES.contains(p));
    }
    assertThat(core.getPackages()).contains("dev.ferry.ram", "dev.ferry.stream", "dev.ferry.migration");
  }

  @Test
  void noPublicSignatureOfAnExportedTypeNamesAnInternalType() throws Exception {
    List<Class<?>> api = exportedTypes();
    assertThat(api).extracting(Class::getName).contains("dev.ferry.api.FerryMachine", "dev.ferry.vmstate.VMStateDescription");
    List<String> leaks = new ArrayList<>();
    for (Class<?> c : api) {
      leaks.addAll(leaks(c));
    }
    assertThat(leaks).isEmpty();
  }

  @Test
  void theLeakCheckFindsTheLeaksOfAnInternalType() throws Exception {
    Class<?> host = Class.forName("dev.ferry.machine.MachineHost", false, core.getClassLoader());
    assertThat(leaks(host))
        .anyMatch(l -> l.contains("dev.ferry.migration.MigrationManager"))
        .anyMatch(l -> l.contains("dev.ferry.machine.Machine"));
  }

  @Test
  void aUserModuleSeesTheApiAndNotTheInternals(@TempDir Path dir) throws IOException {
    String ok = """
        package user;
        import dev.ferry.api.FerryMachine;
        import dev.ferry.vmstate.VMStateDescription;
        public class App {
          public static FerryMachine.Builder b() { return FerryMachine.builder().ram("r", 4096); }
          static VMStateDescription<long[]> d = VMStateDescription.<long[]>builder("d").build();
        }
        """;
    assertThat(compileUserModule(dir.resolve("ok"), ok)).isEmpty();
    String bad = """
        package user;
        public class App {
          static dev.ferry.ram.RamBlock block;
        }
        """;
    assertThat(compileUserModule(dir.resolve("bad"), bad))
        .contains("package dev.ferry.ram is not visible");
  }

  /** Compiles module {@code user} (requires dev.ferry.core) with {@code app}; the diagnostics. */
  private static String compileUserModule(Path dir, String app) throws IOException {
    Path src = dir.resolve("src");
    Files.createDirectories(src.resolve("user"));
    Files.writeString(src.resolve("module-info.java"), "module user { requires dev.ferry.core; }\n");
    Files.writeString(src.resolve("user/App.java"), app);
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    List<String> args = List.of(
        "-d", dir.resolve("out").toString(),
        "--module-path", modulePath.stream().map(Path::toString).collect(Collectors.joining(File.pathSeparator)),
        "-Xlint:-requires-automatic",
        src.resolve("module-info.java").toString(),
        src.resolve("user/App.java").toString());
    int rc = javac.run(null, out, out, args.toArray(String[]::new));
    return rc == 0 ? "" : out.toString(java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Every public type (top level, or nested in a public type) of the exported packages. */
  static List<Class<?>> exportedTypes() throws IOException, ClassNotFoundException {
    List<Class<?>> out = new ArrayList<>();
    for (String p : new TreeSet<>(API_PACKAGES)) {
      Path dir = classes.resolve(p.replace('.', '/'));
      List<Path> files;
      try (Stream<Path> s = Files.list(dir)) {
        files = s.filter(f -> f.toString().endsWith(".class")).sorted().toList();
      }
      for (Path f : files) {
        String simple = f.getFileName().toString().replace(".class", "");
        if (simple.equals("package-info")) {
          continue;
        }
        Class<?> c = Class.forName(p + "." + simple, false, core.getClassLoader());
        if (visibleOutside(c)) {
          out.add(c);
        }
      }
    }
    return out;
  }

  private static boolean visibleOutside(Class<?> c) {
    for (Class<?> k = c; k != null; k = k.getDeclaringClass()) {
      if (!visible(k.getModifiers()) || k.isAnonymousClass() || k.isLocalClass()) {
        return false;
      }
    }
    return true;
  }

  /** "Owner.member: type" for each type a public or protected signature of {@code c} names that is not exported. */
  static List<String> leaks(Class<?> c) {
    List<String> out = new ArrayList<>();
    check(c.getName() + " extends", c.getGenericSuperclass(), out);
    for (Type t : c.getGenericInterfaces()) {
      check(c.getName() + " implements", t, out);
    }
    for (TypeVariable<?> v : c.getTypeParameters()) {
      for (Type b : v.getBounds()) {
        check(c.getName() + "<" + v.getName() + ">", b, out);
      }
    }
    for (Field f : c.getDeclaredFields()) {
      if (visible(f.getModifiers())) {
        check(c.getName() + "." + f.getName(), f.getGenericType(), out);
      }
    }
    for (Constructor<?> k : c.getDeclaredConstructors()) {
      if (visible(k.getModifiers())) {
        checkExecutable(c.getName() + ".<init>", k, out);
      }
    }
    for (Method m : c.getDeclaredMethods()) {
      if (visible(m.getModifiers()) && !m.isSynthetic() && !m.isBridge()) {
        String where = c.getName() + "." + m.getName();
        check(where + " returns", m.getGenericReturnType(), out);
        checkExecutable(where, m, out);
      }
    }
    return out;
  }

  private static boolean visible(int modifiers) {
    return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
  }

  private static void checkExecutable(String where, Executable e, List<String> out) {
    for (Type t : e.getGenericParameterTypes()) {
      check(where + " takes", t, out);
    }
    for (Type t : e.getGenericExceptionTypes()) {
      check(where + " throws", t, out);
    }
    for (TypeVariable<?> v : e.getTypeParameters()) {
      for (Type b : v.getBounds()) {
        check(where + "<" + v.getName() + ">", b, out);
      }
    }
  }

  private static void check(String where, Type t, List<String> out) {
    Set<Class<?>> named = new HashSet<>();
    collect(t, named, new HashSet<>());
    for (Class<?> k : named) {
      if (!exported(k)) {
        out.add(where + ": " + k.getName());
      }
    }
  }

  private static void collect(Type t, Set<Class<?>> out, Set<Type> seen) {
    if (t == null || !seen.add(t)) {
      return;
    }
    switch (t) {
      case Class<?> c -> {
        while (c.isArray()) {
          c = c.getComponentType();
        }
        if (!c.isPrimitive()) {
          out.add(c);
        }
      }
      case ParameterizedType p -> {
        collect(p.getRawType(), out, seen);
        collect(p.getOwnerType(), out, seen);
        Arrays.stream(p.getActualTypeArguments()).forEach(a -> collect(a, out, seen));
      }
      case WildcardType w -> {
        Arrays.stream(w.getUpperBounds()).forEach(a -> collect(a, out, seen));
        Arrays.stream(w.getLowerBounds()).forEach(a -> collect(a, out, seen));
      }
      case GenericArrayType g -> collect(g.getGenericComponentType(), out, seen);
      case TypeVariable<?> v -> Arrays.stream(v.getBounds()).forEach(a -> collect(a, out, seen));
      default -> throw new IllegalStateException("unknown type " + t);
    }
  }

  /** Exported to everyone by a named module (the JDK's, slf4j's, or ferry-core's API packages). */
  private static boolean exported(Class<?> c) {
    Module m = c.getModule();
    return m.isNamed() && m.isExported(c.getPackageName());
  }
}
