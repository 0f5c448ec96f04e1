package dev.ferry.cli.soak;

import dev.ferry.cli.soak.SoakPlan.Fault;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** The soak's tally: outcome × fault counts, faults that struck, data losses and other problems. */
public final class SoakSummary {
  private final Map<String, Map<Fault, Integer>> table = new TreeMap<>();
  private final Map<Fault, Integer> planned = new EnumMap<>(Fault.class);
  private final Map<Fault, Integer> fired = new EnumMap<>(Fault.class);
  private final List<String> problemRuns = new ArrayList<>();
  private int runs;
  private int dataLoss;
  private int retries;
  private int retriesOk;
  private int recoveryRuns;
  private int recoveredRuns;
  private int recoveries;

  void add(SoakRun.Result r) {
    runs++;
    Fault f = r.plan().fault();
    table.computeIfAbsent(r.outcome(), k -> new EnumMap<>(Fault.class)).merge(f, 1, Integer::sum);
    planned.merge(f, 1, Integer::sum);
    if (r.faultFired()) {
      fired.merge(f, 1, Integer::sum);
    }
    if (r.dataLoss()) {
      dataLoss++;
    }
    if (r.json().has("retry")) {
      retries++;
      if (r.json().path("retry").path("status").asText().equals("completed")
          && r.json().path("retry-digest-equal").asBoolean(false)) {
        retriesOk++;
      }
    }
    if (f == Fault.POSTCOPY_RECOVERY && r.faultFired()) {
      recoveryRuns++;
      recoveries += r.json().path("recovery").path("recoveries").asInt();
      if (r.outcome().equals("recovered") && r.problems().isEmpty()
          && (r.json().path("digest-equal").asBoolean(false) || r.json().path("stress-check").asBoolean(false))) {
        recoveredRuns++;
      }
    }
    if (!r.problems().isEmpty()) {
      problemRuns.add("run " + r.plan().run() + " (seed " + Long.toUnsignedString(r.plan().runSeed(), 16) + "): "
          + String.join("; ", r.problems()));
    }
  }

  public int runs() {
    return runs;
  }

  public int dataLoss() {
    return dataLoss;
  }

  public List<String> problemRuns() {
    return List.copyOf(problemRuns);
  }

  /** Postcopy runs whose link broke. */
  public int recoveryRuns() {
    return recoveryRuns;
  }

  /** Of {@link #recoveryRuns}, those that recovered and completed with equal digests. */
  public int recoveredRuns() {
    return recoveredRuns;
  }

  /** {@code migrate {resume: true}} attempts over all runs (a cut recovery counts, and its successor). */
  public int recoveries() {
    return recoveries;
  }

  public int planned(Fault f) {
    return planned.getOrDefault(f, 0);
  }

  public int fired(Fault f) {
    return fired.getOrDefault(f, 0);
  }

  /** Runs with {@code outcome} under fault {@code f}. */
  public int count(String outcome, Fault f) {
    return table.getOrDefault(outcome, Map.of()).getOrDefault(f, 0);
  }

  void print(PrintStream out, long elapsedMs) {
    StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-26s", "outcome \\ fault"));
    for (Fault f : Fault.values()) {
      head.append(String.format(Locale.ROOT, "%19s", f.label()));
    }
    head.append(String.format(Locale.ROOT, "%8s", "total"));
    out.println(head);
    for (var e : table.entrySet()) {
      StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "%-26s", e.getKey()));
      int total = 0;
      for (Fault f : Fault.values()) {
        int n = e.getValue().getOrDefault(f, 0);
        total += n;
        row.append(String.format(Locale.ROOT, "%19s", n == 0 ? "." : Integer.toString(n)));
      }
      row.append(String.format(Locale.ROOT, "%8d", total));
      out.println(row);
    }
    StringBuilder f1 = new StringBuilder(String.format(Locale.ROOT, "%-26s", "fault struck / planned"));
    for (Fault f : Fault.values()) {
      f1.append(String.format(Locale.ROOT, "%19s", f == Fault.NONE ? "-" : fired(f) + "/" + planned(f)));
    }
    out.println(f1);
    out.printf(Locale.ROOT, "runs %d in %.1f min; retries after a failure %d, completed with equal digests %d; data loss %d; runs with problems %d%n",
        runs, elapsedMs / 60000.0, retries, retriesOk, dataLoss, problemRuns.size());
    out.printf(Locale.ROOT, "postcopy links broken %d, recovered and completed with equal digests (or the stress check of a running destination) %d; recoveries (migrate resume) %d%n",
        recoveryRuns, recoveredRuns, recoveries);
    for (String p : problemRuns) {
      out.println("  " + p);
    }
  }
}
