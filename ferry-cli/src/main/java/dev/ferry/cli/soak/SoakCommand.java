package dev.ferry.cli.soak;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.cli.live.Units;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry soak}: seeded random live migrations between separate {@code ferry run} processes,
 * each with a fault drawn from the seed (none, {@code migrate_cancel}, destination killed, source
 * killed, connection cut by a proxy), each checked exactly (see {@link SoakRun}). One JSON line per
 * run, a summary table at the end; exit code 0 only when no run had a problem.
 *
 * <p>The seed comes first in the output. Run k's dimensions come from its own seed, derived from
 * the soak's seed and k ({@link SoakPlan#runSeed}), so {@code --seed S --skip K --runs 1} replays run
 * K alone.
 */
@Command(
    name = "soak",
    mixinStandardHelpOptions = true,
    description = {
      "Seeded random live migrations between ferry processes, with faults, each checked exactly.",
      "Prints the seed first, one line per run, and an outcome x fault table at the end. Exit code",
      "0 only when no run lost data or broke a rule; replay run K with --seed S --skip K --runs 1."
    })
public final class SoakCommand implements Callable<Integer> {
  @Option(names = "--runs", paramLabel = "N", description = "runs (default ${DEFAULT-VALUE})", defaultValue = "100")
  int runs;

  @Option(names = "--seed", paramLabel = "S", description = "the soak's seed, decimal or 0x hex (default: from the clock)")
  String seed;

  @Option(names = "--skip", paramLabel = "K", description = "start at run K (replays run K with --runs 1)", defaultValue = "0")
  int skip;

  @Option(names = "--minutes", paramLabel = "M", description = "start no run after M minutes (default: no limit)")
  Double minutes;

  @Option(names = "--jsonl", paramLabel = "FILE", description = "append one JSON line per run to FILE")
  Path jsonl;

  @Option(names = "--max-memory", paramLabel = "SIZE", description = "largest guest, 64M..1G (default ${DEFAULT-VALUE})", defaultValue = "1G")
  String maxMemory;

  @Option(names = "--fault", paramLabel = "KIND",
      description = "every run gets this fault (none, cancel, kill-destination, kill-source, proxy-cut, postcopy-recovery);"
          + " replay with the same --fault")
  String fault;

  @Option(names = "--keep", description = "keep every run's temp dir (default: only those of runs with a problem)")
  boolean keep;

  private PrintStream out = System.out;
  private SoakSummary summary;

  /** For tests: where the lines go. */
  void output(PrintStream o) {
    this.out = o;
  }

  /** The tally of the last {@link #call} (for tests). */
  SoakSummary summary() {
    return summary;
  }

  @Override
  public Integer call() {
    long s;
    long maxMem;
    SoakPlan.Fault only;
    try {
      s = seed == null ? System.nanoTime() ^ System.currentTimeMillis() * 0x9E3779B97F4A7C15L : parseSeed(seed);
      maxMem = dev.ferry.qmp.Sizes.parse(maxMemory, 'M'); // the one size grammar: a bare number is MiB, as --memory
      if (maxMem < SoakPlan.MIN_MEMORY_BYTES) {
        throw new IllegalArgumentException("--max-memory must be at least 64M: " + maxMemory);
      }
      only = fault == null ? null : SoakPlan.Fault.of(fault);
      if (runs < 1 || skip < 0) {
        throw new IllegalArgumentException("--runs must be positive and --skip not negative");
      }
    } catch (IllegalArgumentException e) {
      System.err.println("ferry soak: " + e.getMessage());
      return 2;
    }
    String f = only == null ? "" : " --fault " + only.label();
    out.printf(Locale.ROOT, "ferry soak: seed %s; runs %d..%d%s; replay one run with --seed %s%s --skip K --runs 1%n",
        Long.toUnsignedString(s), skip, skip + runs - 1, f.isEmpty() ? "" : ";" + f, Long.toUnsignedString(s), f);
    ObjectMapper json = new ObjectMapper();
    summary = new SoakSummary();
    long t0 = System.nanoTime();
    try (BufferedWriter w = jsonl == null ? null
        : Files.newBufferedWriter(jsonl, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
      for (int k = skip; k < skip + runs; k++) {
        if (minutes != null && System.nanoTime() - t0 > (long) (minutes * 60e9)) {
          out.println("ferry soak: --minutes " + minutes + " reached after " + (k - skip) + " runs");
          break;
        }
        SoakPlan plan = SoakPlan.draw(k, SoakPlan.runSeed(s, k), maxMem, only);
        SoakRun.Result r = SoakRun.execute(plan, keep);
        summary.add(r);
        out.printf(Locale.ROOT, "run %d seed %s: %-52s -> %s%s%s (%.1f s)%n", k, Long.toUnsignedString(plan.runSeed(), 16),
            plan.oneLine(), r.outcome(), r.faultFired() ? "" : plan.fault() == SoakPlan.Fault.NONE ? "" : ", fault did not strike",
            digestNote(r), r.json().path("times").path("run-ms").asLong() / 1000.0);
        for (String p : r.problems()) {
          out.println("    PROBLEM: " + p);
        }
        if (r.json().has("dir")) {
          out.println("    files: " + r.json().get("dir").asText());
        }
        if (w != null) {
          w.write(json.writeValueAsString(r.json()));
          w.newLine();
          w.flush();
        }
      }
    } catch (IOException e) {
      System.err.println("ferry soak: cannot write " + jsonl + ": " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      System.err.println("ferry soak: interrupted");
      return 130;
    }
    out.println();
    summary.print(out, (System.nanoTime() - t0) / 1_000_000);
    return summary.problemRuns().isEmpty() ? 0 : 1;
  }

  private static String digestNote(SoakRun.Result r) {
    var j = r.json();
    String d = j.has("digest-equal") ? "digest " + eq(j.get("digest-equal")) : "";
    String rd = j.has("retry-digest-equal") ? "retry " + j.path("retry").path("status").asText() + ", digest " + eq(j.get("retry-digest-equal")) : "";
    String sc = j.has("stress-check") ? "destination ran, stress check " + (j.get("stress-check").asBoolean() ? "ok" : "FAILED") : "";
    String both = String.join(", ", java.util.stream.Stream.of(d, rd, sc).filter(x -> !x.isEmpty()).toList());
    return both.isEmpty() ? "" : " (" + both + ")";
  }

  private static String eq(com.fasterxml.jackson.databind.JsonNode n) {
    return n.asBoolean() ? "equal" : "DIFFERS";
  }

  static long parseSeed(String text) {
    String t = text.strip();
    try {
      if (t.startsWith("0x") || t.startsWith("0X")) {
        return Long.parseUnsignedLong(t.substring(2), 16);
      }
      return t.startsWith("-") ? Long.parseLong(t) : Long.parseUnsignedLong(t);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad --seed '" + text + "' (a decimal or 0x hex number)");
    }
  }
}
