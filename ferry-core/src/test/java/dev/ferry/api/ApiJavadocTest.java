package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.source.doctree.DocCommentTree;
import com.sun.source.tree.ClassTree;
import com.sun.source.tree.CompilationUnitTree;
import com.sun.source.tree.MethodTree;
import com.sun.source.tree.ModifiersTree;
import com.sun.source.tree.Tree;
import com.sun.source.tree.VariableTree;
import com.sun.source.util.DocTrees;
import com.sun.source.util.JavacTask;
import com.sun.source.util.TreePath;
import com.sun.source.util.TreePathScanner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.lang.model.element.Modifier;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;

/**
 * Every type of the exported packages that code outside the module can see, and every public
 * method, constructor and field of those types (enum constants and record components aside, which
 * their type's comment covers), has a doc comment. javac's doclint (in the build) checks that the
 * comments are well formed.
 */
class ApiJavadocTest {
  @Test
  void everyExportedTypeAndMemberHasADocComment() throws IOException {
    List<Path> sources = new ArrayList<>();
    for (String p : ModuleBoundaryTest.API_PACKAGES) {
      try (Stream<Path> s = Files.list(Path.of("src", "main", "java").resolve(p.replace('.', '/')))) {
        s.filter(f -> f.toString().endsWith(".java") && !f.endsWith("package-info.java")).forEach(sources::add);
      }
    }
    assertThat(sources).isNotEmpty();
    List<String> missing = undocumented(sources);
    assertThat(missing).isEmpty();
  }

  @Test
  void theCheckFindsAnUndocumentedType() throws IOException {
    Path dir = Files.createTempDirectory("javadoc-check");
    Path f = dir.resolve("Bare.java");
    Files.writeString(f, """
        package x;
        /** Documented. */
        public class Bare {
          public void undocumented() {}
          /** Documented. */
          public static final class Inner {}
          public interface Naked {}
        }
        """);
    assertThat(undocumented(List.of(f)))
        .containsExactlyInAnyOrder("Bare.undocumented", "Bare.Naked");
  }

  /** "Type" or "Type.member" for each visible declaration without a doc comment. */
  static List<String> undocumented(List<Path> sources) throws IOException {
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    List<String> out = new ArrayList<>();
    try (StandardJavaFileManager fm = javac.getStandardFileManager(null, null, null)) {
      Iterable<? extends JavaFileObject> units = fm.getJavaFileObjectsFromPaths(sources);
      JavacTask task = (JavacTask) javac.getTask(null, fm, d -> {}, List.of("-proc:none"), null, units);
      DocTrees docs = DocTrees.instance(task);
      for (CompilationUnitTree unit : task.parse()) {
        new TreePathScanner<Void, String>() {
          @Override
          public Void visitClass(ClassTree c, String outer) {
            if (!visible(c.getModifiers(), outer, c)) {
              return null; // nothing inside an invisible type is visible
            }
            TreePath here = getCurrentPath(); // scan(TreePath, ..) below resets the scanner's path
            String name = outer == null ? c.getSimpleName().toString() : outer + "." + c.getSimpleName();
            checkMember(here, name);
            for (Tree m : c.getMembers()) {
              switch (m) {
                case ClassTree nested -> scan(new TreePath(here, nested), name);
                case MethodTree mt -> {
                  boolean ctor = mt.getName().contentEquals("<init>");
                  if (visible(mt.getModifiers(), name, c) && !(ctor && isRecordOrEnum(c))) {
                    checkMember(new TreePath(here, mt), name + "." + (ctor ? c.getSimpleName() : mt.getName()));
                  }
                }
                case VariableTree v -> {
                  if (visible(v.getModifiers(), name, c) && c.getKind() != Tree.Kind.ENUM && c.getKind() != Tree.Kind.RECORD) {
                    checkMember(new TreePath(here, v), name + "." + v.getName());
                  }
                }
                default -> {}
              }
            }
            return null;
          }

          private void checkMember(TreePath p, String name) {
            DocCommentTree d = docs.getDocCommentTree(p);
            if (d == null && !overrides(p)) {
              out.add(name);
            }
          }
        }.scan(unit, null);
      }
    }
    return out;
  }

  private static boolean isRecordOrEnum(ClassTree c) {
    return c.getKind() == Tree.Kind.RECORD || c.getKind() == Tree.Kind.ENUM;
  }

  /** An {@code @Override} inherits its documentation. */
  private static boolean overrides(TreePath p) {
    if (p.getLeaf() instanceof MethodTree m) {
      return m.getModifiers().getAnnotations().stream().anyMatch(a -> a.getAnnotationType().toString().equals("Override"));
    }
    return false;
  }

  /** Public or protected, or a member of an interface (implicitly public). */
  private static boolean visible(ModifiersTree mods, String outer, ClassTree owner) {
    if (mods.getFlags().contains(Modifier.PRIVATE)) {
      return false;
    }
    if (mods.getFlags().contains(Modifier.PUBLIC) || mods.getFlags().contains(Modifier.PROTECTED)) {
      return true;
    }
    return outer != null && owner.getKind() == Tree.Kind.INTERFACE;
  }
}
