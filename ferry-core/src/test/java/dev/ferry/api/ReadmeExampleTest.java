package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's getting-started example ("Ferry as a library") compiles against this API: its
 * declarations and its statements (from {@code // source process} on) are wrapped in a class and
 * given to javac, so a change of the API that breaks the example fails here.
 */
class ReadmeExampleTest {
  static final String SECTION = "## Ferry as a library";
  static final String STATEMENTS_FROM = "// source process";

  static Path readme() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path p = dir.resolve("README.md");
      if (Files.exists(p) && Files.exists(dir.resolve("ferry-core"))) {
        return p;
      }
    }
    throw new IllegalStateException("no README.md above " + Path.of("").toAbsolutePath());
  }

  /** The first {@code ```java} block after the section heading. */
  static String example(String readme) {
    int section = readme.indexOf(SECTION);
    assertThat(section).as("README section '%s'", SECTION).isNotNegative();
    int start = readme.indexOf("```java\n", section);
    int end = readme.indexOf("```\n", start + 8);
    return readme.substring(start + 8, end);
  }

  @Test
  void theGettingStartedExampleCompiles(@TempDir Path out) throws IOException {
    String code = example(Files.readString(readme()));
    int split = code.indexOf(STATEMENTS_FROM);
    assertThat(split).as("the example's statements begin with '%s'", STATEMENTS_FROM).isPositive();
    String source =
        """
        import dev.ferry.api.*;
        import dev.ferry.vmstate.*;
        import java.nio.file.Path;
        import java.time.Duration;

        class ReadmeExample {
        %s
          static void run() throws Exception {
        %s
          }
        }
        """
            .formatted(code.substring(0, split), code.substring(split));
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    List<String> path = new ArrayList<>();
    for (String p : List.of("java.class.path", "jdk.module.path")) {
      String v = System.getProperty(p);
      if (v != null && !v.isEmpty()) {
        path.add(v);
      }
    }
    JavaFileObject file =
        new SimpleJavaFileObject(java.net.URI.create("string:///ReadmeExample.java"), JavaFileObject.Kind.SOURCE) {
          @Override
          public CharSequence getCharContent(boolean ignoreEncodingErrors) {
            return source;
          }
        };
    StringWriter errors = new StringWriter();
    boolean ok =
        javac
            .getTask(
                errors,
                null,
                null,
                List.of("-proc:none", "-d", out.toString(), "-cp", String.join(File.pathSeparator, path)),
                null,
                List.of(file))
            .call();
    assertThat(ok).as("the README example does not compile:%n%s%n%s", errors, source).isTrue();
  }
}
