package dev.ferry.cli.soak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.cli.RunCommand;
import dev.ferry.cli.live.FerryChild;
import dev.ferry.cli.live.LiveMigration;
import dev.ferry.cli.live.LiveMigration.Endpoint;
import dev.ferry.cli.live.LiveMigration.Transport;
import dev.ferry.cli.soak.SoakPlan.Fault;
import dev.ferry.migration.MigrationCapability;
import dev.ferry.qmp.qapi.MigrationInfo;
import dev.ferry.qmp.qapi.MigrationParameter;
import dev.ferry.qmp.qapi.MigrationSettings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One soak run: two (or more) {@code ferry run} processes, a live migration between them over QMP
 * with the plan's fault injected, and every check the outcome calls for.
 *
 * <ul>
 *   <li><b>completed</b>: the digest of the stopped source ({@code postmigrate}) equals the
 *       destination's, taken while the destination is still paused after the load (it starts with
 *       {@code --paused}); then {@code cont} and the guest runs on (a writing guest changes its RAM).
 *   <li><b>failed / cancelled</b>: the source runs again, {@code query-migrate} says {@code failed}
 *       with an {@code error-desc} (or {@code cancelled}); the destination never reports a load (its
 *       incoming migration failed: the process exits 1 without the "loaded" line; a {@code file:}
 *       stream left partial is offered to a fresh destination, which must refuse it); then a retry to
 *       a fresh destination completes with equal digests.
 *   <li><b>source killed</b>: the destination never reports a load of what it got.
 *   <li>Always: no process that names the run's temp dir is left once the run is torn down.
 * </ul>
 *
 * A destination that loaded a whole stream while the source failed afterwards (the stream got
 * through, the return path's SHUT did not) is reported as such: it stays paused and never ran, so
 * nothing runs twice.
 */
final class SoakRun {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  private static final Duration START_TIMEOUT = Duration.ofMinutes(2);
  private static final Duration SETTLE_TIMEOUT = Duration.ofSeconds(60);

  /** What came out of a run. */
  record Result(SoakPlan plan, String outcome, boolean faultFired, boolean dataLoss, List<String> problems, ObjectNode json) {}

  private final SoakPlan plan;
  private final ObjectNode json = F.objectNode();
  // the run's deadline may read these from another thread while the run goes on
  private final List<String> problems = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final AtomicReference<LiveMigration> live = new AtomicReference<>();
  private final boolean keepFiles;
  private volatile boolean dataLoss;
  private volatile boolean faultFired;
  private volatile String outcome = "error";
  private final long startNs = System.nanoTime();

  private SoakRun(SoakPlan plan, boolean keepFiles) {
    this.plan = plan;
    this.keepFiles = keepFiles;
  }

  /** A generous bound for one migration of this plan's guest on a loaded machine. */
  static Duration migrationTimeout(SoakPlan p) {
    long bw = p.maxBandwidthBytesPerSec() == null ? 100L << 20 : p.maxBandwidthBytesPerSec();
    return Duration.ofSeconds(120 + 4 * p.memoryBytes() / bw);
  }

  /**
   * Runs the plan. The whole run has a deadline (a hang is an outcome, not the end of the soak):
   * past it the children are killed, which ends any QMP call the run is stuck in.
   */
  static Result execute(SoakPlan plan, boolean keepAll) throws InterruptedException {
    SoakRun r = new SoakRun(plan, keepAll);
    plan.describe(r.json);
    long t0 = System.nanoTime();
    Thread worker = Thread.ofPlatform().name("soak-run-" + plan.run()).unstarted(r::runGuarded);
    worker.start();
    Duration deadline = migrationTimeout(plan).multipliedBy(3).plus(START_TIMEOUT);
    worker.join(deadline);
    if (worker.isAlive()) {
      r.problems.add("hang: the run did not end within " + deadline.toSeconds() + " s; children killed");
      r.outcome = "hang";
      LiveMigration lm = r.live.get();
      if (lm != null) {
        lm.keepFiles(true);
        lm.close();
      }
      worker.join(Duration.ofSeconds(60));
    }
    r.json.put("outcome", r.outcome);
    r.json.put("fault-fired", r.faultFired);
    ObjectNode times = r.json.has("times") ? (ObjectNode) r.json.get("times") : r.json.putObject("times");
    times.put("run-ms", (System.nanoTime() - t0) / 1_000_000);
    r.json.put("data-loss", r.dataLoss);
    ArrayNode pr = r.json.putArray("problems");
    r.problems.forEach(pr::add);
    LiveMigration lm = r.live.get();
    boolean keep = keepAll || !r.problems.isEmpty();
    if (lm != null && keep) {
      r.json.put("dir", lm.dir().toString());
    }
    return new Result(plan, r.outcome, r.faultFired, r.dataLoss, List.copyOf(r.problems), r.json);
  }

  private void runGuarded() {
    LiveMigration lm = null;
    try {
      lm = new LiveMigration(plan.spec(), true);
      live.set(lm);
      run(lm);
    } catch (IOException e) {
      problems.add("error: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      problems.add("interrupted");
    } catch (RuntimeException e) {
      problems.add("error: " + e);
    } finally {
      if (lm != null) {
        lm.keepFiles(true); // decided below, once the leftover check has seen the dir
        lm.close();
        List<String> left = leftovers(lm.dir());
        if (!left.isEmpty()) {
          problems.add("processes left behind: " + left);
          ArrayNode a = json.putArray("leftover-processes");
          left.forEach(a::add);
        }
        if (problems.isEmpty() && !keepFiles) {
          lm.keepFiles(false);
          lm.close(); // removes the dir now
        }
      }
    }
  }

  private void run(LiveMigration lm) throws IOException, InterruptedException {
    Transport t = plan.transport();
    if (t != Transport.FILE) {
      lm.startDestinationAndSource();
    } else {
      lm.startSource();
    }
    if (plan.returnPath() != t.hasReturnPath()) {
      LiveMigration.apply(lm.source().qmp(),
          new MigrationSettings().capability(MigrationCapability.RETURN_PATH, plan.returnPath()));
    }
    mark("started");
    warmUp(lm);
    mark("migrate");

    if (plan.fault() == Fault.POSTCOPY_RECOVERY) {
      postcopyRecovery(lm);
      return;
    }
    FerryChild firstDestination = lm.destination();
    CutProxy proxy = null;
    String uri = lm.endpoint().connectUri();
    if (plan.fault() == Fault.PROXY_CUT) {
      proxy = CutProxy.start(uri, lm.dir().resolve("proxy.sock"), plan.triggerAt());
      uri = proxy.listenUri();
    }
    try {
      Attempt a = migrate(lm, uri, true);
      if (proxy != null) {
        faultFired = proxy.cut();
        ObjectNode p = json.putObject("proxy");
        p.put("forwarded", proxy.forwardedBytes());
        p.put("returned", proxy.returnedBytes());
        p.put("cut", proxy.cut());
        p.put("source-eof", proxy.sourceEof());
      }
      judge(lm, a, firstDestination, proxy);
    } finally {
      if (proxy != null) {
        proxy.close();
      }
    }
  }

  /** Recoveries after the first break at most: one more than a planned second cut needs. */
  static final int MAX_RECOVERIES = 4;
  /** How long a side may take to notice a broken link and go postcopy-paused. */
  private static final Duration PAUSE_TIMEOUT = Duration.ofSeconds(60);

  /**
   * A postcopy migration through a proxy; once the destination ran POSTCOPY_RUN the link breaks (the
   * proxy cuts it a seeded number of bytes later, or {@code migrate-pause} on one side); both sides
   * must go {@code postcopy-paused}, the destination paused and never run. Then {@code migrate-recover}
   * on the destination and {@code migrate {resume: true}} on the source, the first recovery's own
   * connection maybe cut by a second proxy (both pause again and recover again), until the migration
   * completes; then the normal check: the stopped source's digest equals the held destination's. A
   * run that cannot recover (a side that does not pause, a recovery that fails, still paused after
   * {@value #MAX_RECOVERIES} recoveries) is a problem, reported with the run's seed.
   */
  private void postcopyRecovery(LiveMigration lm) throws IOException, InterruptedException {
    SoakPlan.Recovery rc = plan.recovery();
    FerryChild src = lm.source();
    FerryChild dst = lm.destination();
    ObjectNode rj = json.putObject("recovery");
    ArrayNode attempts = rj.putArray("attempts");
    try (CutProxy proxy = CutProxy.start(lm.endpoint().connectUri(), lm.dir().resolve("proxy.sock"), Long.MAX_VALUE)) {
      LiveMigration.apply(src.qmp(), new MigrationSettings()
          .parameter(MigrationParameter.MAX_POSTCOPY_BANDWIDTH, rc.postcopyBandwidthBytesPerSec()));
      LiveMigration.execute(src.qmp(), "migrate", F.objectNode().put("uri", proxy.listenUri()));
      lm.startPostcopy();
      long start = System.nanoTime();
      // the break comes after the destination ran POSTCOPY_RUN: its machine leaves inmigrate (held: paused)
      String afterRun = rc.guestRuns() ? "running" : "paused";
      String st = sourceStatus(lm);
      while (!LiveMigration.runState(dst).equals(afterRun)) {
        st = sourceStatus(lm);
        if (isEnd(st) || System.nanoTime() - start > migrationTimeout(plan).toNanos()) {
          break;
        }
        Thread.sleep(5);
      }
      if (!isEnd(st) && LiveMigration.runState(dst).equals(afterRun)) {
        mark("postcopy-run");
        rj.put("forwarded-at-run", proxy.forwardedBytes());
        if (plan.trigger() == SoakPlan.Trigger.PAUSE) {
          Thread.sleep(plan.triggerAt());
          FerryChild side = rc.pauseOnSource() ? src : dst;
          try {
            LiveMigration.execute(side.qmp(), "migrate-pause", null);
          } catch (IOException e) {
            // refused when postcopy is no longer active there: the migration ended meanwhile
            rj.put("pause-refused", e.getMessage());
          }
        } else {
          proxy.cutAfter(proxy.forwardedBytes() + plan.triggerAt());
        }
        st = awaitPausedOrEnd(lm);
      }
      rj.put("first-break", st);
      if (st.equals("postcopy-paused")) {
        faultFired = true;
        mark("paused");
        if (!checkHeldPaused(lm, "after the first break")) {
          return;
        }
        st = recoverUntilDone(lm, rc, attempts);
      }
      rj.put("recoveries", attempts.size());
      json.putObject("migration").put("status", st);
      finishRecoveryRun(lm, st);
    }
  }

  /** The source's {@code query-migrate} status ({@code source-exited} when its monitor is gone). */
  private static String sourceStatus(LiveMigration lm) throws IOException, InterruptedException {
    try {
      MigrationInfo i = lm.queryMigrate();
      return i.status() == null ? "none" : i.status().qapiName();
    } catch (IOException e) {
      if (!lm.source().alive()) {
        return "source-exited";
      }
      throw e;
    }
  }

  private static boolean isEnd(String status) {
    return List.of("completed", "failed", "cancelled", "source-exited").contains(status);
  }

  /** Waits until both sides are postcopy-paused (returns that) or the source ended (returns its status). */
  private String awaitPausedOrEnd(LiveMigration lm) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + PAUSE_TIMEOUT.toNanos();
    String st = sourceStatus(lm);
    String ds = "-";
    while (System.nanoTime() - deadline < 0) {
      st = sourceStatus(lm);
      if (isEnd(st)) {
        return st;
      }
      ds = lm.queryDestinationMigrate().status().qapiName();
      if (st.equals("postcopy-paused") && ds.equals("postcopy-paused")) {
        return st;
      }
      Thread.sleep(10);
    }
    problems.add("postcopy recovery: the sides did not both pause within " + PAUSE_TIMEOUT.toSeconds()
        + " s: source " + st + ", destination " + ds);
    return "not-paused";
  }

  /**
   * A postcopy-paused destination answers its monitor and says how to recover; a held one stays
   * paused (its guest never ran).
   */
  private boolean checkHeldPaused(LiveMigration lm, String when) throws IOException, InterruptedException {
    String rs = LiveMigration.runState(lm.destination());
    if (!rs.equals("paused") && !plan.recovery().guestRuns()) {
      problems.add("postcopy recovery: the destination is '" + rs + "' " + when + ", not paused");
      return false;
    }
    MigrationInfo d = lm.queryDestinationMigrate();
    if (d.errorDesc() == null || !d.errorDesc().contains("migrate-recover")) {
      problems.add("postcopy recovery: the paused destination's error-desc does not say how to recover: " + d.errorDesc());
    }
    return true;
  }

  /**
   * Recovers until the source completes, fails, or is still paused after {@value #MAX_RECOVERIES}
   * recoveries; returns the source's last status. Each attempt is one element of {@code attempts}.
   */
  private String recoverUntilDone(LiveMigration lm, SoakPlan.Recovery rc, ArrayNode attempts)
      throws IOException, InterruptedException {
    FerryChild src = lm.source();
    FerryChild dst = lm.destination();
    for (int n = 1; n <= MAX_RECOVERIES; n++) {
      ObjectNode aj = attempts.addObject();
      String listen = plan.transport() == Transport.UNIX ? "unix:" + lm.dir().resolve("recover-" + n + ".sock") : "tcp:127.0.0.1:0";
      LiveMigration.execute(dst.qmp(), "migrate-recover", F.objectNode().put("uri", listen));
      MigrationInfo di = lm.queryDestinationMigrate();
      if (di.socketAddress() == null || di.socketAddress().isEmpty()) {
        problems.add("postcopy recovery: migrate-recover " + listen + " answered but query-migrate shows no socket-address");
        return "not-recovered";
      }
      String at = di.socketAddress().get(0);
      boolean cut = n == 1 && rc.secondCutBytes() > 0;
      CutProxy second = cut ? CutProxy.start(at, lm.dir().resolve("proxy-recover.sock"), rc.secondCutBytes()) : null;
      try {
        if (!cut) { // no more planned breaks: the rest at full speed
          LiveMigration.apply(src.qmp(), new MigrationSettings().parameter(MigrationParameter.MAX_POSTCOPY_BANDWIDTH, 0L));
        }
        long t0 = System.nanoTime();
        LiveMigration.execute(src.qmp(), "migrate",
            F.objectNode().put("uri", second == null ? at : second.listenUri()).put("resume", true));
        String st = awaitAfterResume(lm, second, aj, t0);
        aj.put("status", st);
        if (second != null) {
          aj.put("cut-after", rc.secondCutBytes());
          aj.put("cut", second.cut());
          aj.put("forwarded", second.forwardedBytes());
        }
        if (!st.equals("postcopy-paused")) {
          return st;
        }
        mark("paused-" + n);
        if (!checkHeldPaused(lm, "after recovery " + n + " broke")) {
          return "not-recovered";
        }
      } finally {
        if (second != null) {
          second.close();
        }
      }
    }
    problems.add("postcopy recovery: still postcopy-paused after " + MAX_RECOVERIES + " recoveries: "
        + lm.queryMigrate().errorDesc());
    return "not-recovered";
  }

  /**
   * After {@code migrate {resume: true}}: until the source ends (completed, failed, ...) or is paused
   * again with the destination (a recovery whose link broke). A source that stays paused without
   * having left the state is given a few seconds (the resume may fail at once, e.g. a refused
   * connection, and the status never visibly moves).
   */
  private String awaitAfterResume(LiveMigration lm, CutProxy second, ObjectNode aj, long t0)
      throws IOException, InterruptedException {
    long deadline = t0 + migrationTimeout(plan).toNanos();
    boolean moved = false;
    while (System.nanoTime() - deadline < 0) {
      String st = sourceStatus(lm);
      if (isEnd(st)) {
        return st;
      }
      if (st.equals("postcopy-active") && !aj.has("resume-to-active-ms")) {
        aj.put("resume-to-active-ms", (System.nanoTime() - t0) / 1_000_000);
      }
      if (!st.equals("postcopy-paused")) {
        moved = true;
      } else if (moved || (second != null && second.cut()) || System.nanoTime() - t0 > Duration.ofSeconds(5).toNanos()) {
        return awaitPausedOrEnd(lm);
      }
      Thread.sleep(5);
    }
    problems.add("hang: the recovered migration is still '" + sourceStatus(lm) + "' after "
        + migrationTimeout(plan).toSeconds() + " s");
    outcome = "hang";
    return "hang";
  }

  /**
   * The end of a recovery run: completed (after recoveries: outcome {@code recovered}) gets the
   * normal check once the destination completed too; anything else is a problem naming why.
   */
  private void finishRecoveryRun(LiveMigration lm, String st) throws IOException, InterruptedException {
    if (st.equals("completed")) {
      outcome = faultFired ? "recovered" : "completed";
      long deadline = System.nanoTime() + SETTLE_TIMEOUT.toNanos();
      String ds = lm.queryDestinationMigrate().status().qapiName();
      while (!ds.equals("completed") && System.nanoTime() - deadline < 0) {
        Thread.sleep(20);
        ds = lm.queryDestinationMigrate().status().qapiName();
      }
      if (!ds.equals("completed")) {
        problems.add("postcopy recovery: the source completed but the destination is '" + ds + "'");
        return;
      }
      if (plan.recovery().guestRuns()) {
        // the destination's guest ran during postcopy: its stress pattern is the oracle
        LiveMigration.execute(lm.destination().qmp(), "stop", null);
        JsonNode r = LiveMigration.execute(lm.destination().qmp(), "ferry-stress-check", null);
        json.put("stress-check", r.path("passed").asBoolean());
        if (!r.path("passed").asBoolean()) {
          dataLoss = true;
          problems.add("postcopy recovery: DATA LOSS: the destination's stress check after the recovery: " + r);
        }
        return;
      }
      completed(lm, plan.transport(), lm.endpoint(), "destination");
      return;
    }
    if (outcome.equals("hang")) {
      return;
    }
    outcome = faultFired ? "not-recovered" : st;
    MigrationInfo si = lm.source().alive() ? lm.queryMigrate() : null;
    problems.add("postcopy recovery failed: source " + st + (si != null && si.errorDesc() != null ? " (" + si.errorDesc() + ")" : "")
        + ", destination " + (lm.destination().alive() ? lm.queryDestinationMigrate().status().qapiName() : "exited")
        + (faultFired ? "" : "; the link never broke"));
  }

  private void warmUp(LiveMigration lm) throws InterruptedException {
    long rate = plan.dirtyRateBytesPerSec() == null ? 512L << 20 : plan.dirtyRateBytesPerSec();
    if (plan.program().equals("stress") && plan.memoryBytes() / rate <= 4) {
      if (!lm.awaitSourcePasses(1, Duration.ofMinutes(2))) {
        problems.add("the source's stress guest made no full pass in 2 min: " + lm.source().lastLine());
      }
    }
    Thread.sleep(plan.warmupMs());
  }

  /** One migration of the source, watched every few ms; the plan's fault strikes at its moment. */
  private record Attempt(
      String uri, MigrationInfo last, String status, boolean sourceKilled, boolean hang, String statusAtFault, long elapsedMs) {}

  private Attempt migrate(LiveMigration lm, String uri, boolean withFault) throws IOException, InterruptedException {
    FerryChild src = lm.source();
    long start = System.nanoTime();
    LiveMigration.execute(src.qmp(), "migrate", F.objectNode().put("uri", uri));
    Fault fault = withFault ? plan.fault() : Fault.NONE;
    boolean pending = fault == Fault.CANCEL || fault == Fault.KILL_DESTINATION || fault == Fault.KILL_SOURCE;
    long deadline = start + migrationTimeout(plan).toNanos();
    MigrationInfo last = null;
    String atFault = null;
    while (true) {
      long elapsedMs = (System.nanoTime() - start) / 1_000_000;
      MigrationInfo info;
      try {
        info = lm.queryMigrate();
      } catch (IOException e) {
        if (!src.alive()) {
          return new Attempt(uri, last, "source-exited", false, false, atFault, elapsedMs);
        }
        throw e;
      }
      last = info;
      String st = info.status() == null ? "none" : info.status().qapiName();
      if (st.equals("completed") || st.equals("failed") || st.equals("cancelled")) {
        return new Attempt(uri, info, st, false, false, atFault, elapsedMs);
      }
      if (pending && reached(info, elapsedMs)) {
        pending = false;
        faultFired = true;
        atFault = st;
        ObjectNode f = (ObjectNode) json.get("fault");
        f.put("fired-ms", elapsedMs);
        f.put("fired-status", st);
        f.put("fired-transferred", info.ram() == null ? 0 : info.ram().transferredBytes());
        switch (fault) {
          case CANCEL -> LiveMigration.execute(src.qmp(), "migrate_cancel", null);
          case KILL_DESTINATION -> lm.destination().kill();
          case KILL_SOURCE -> {
            src.kill();
            return new Attempt(uri, info, st, true, false, atFault, elapsedMs);
          }
          default -> throw new IllegalStateException("no trigger for " + fault);
        }
      }
      if (System.nanoTime() - deadline > 0) {
        return new Attempt(uri, info, st, false, true, atFault, elapsedMs);
      }
      Thread.sleep(5);
    }
  }

  private boolean reached(MigrationInfo info, long elapsedMs) {
    return switch (plan.trigger()) {
      case BYTES -> info.ram() != null && info.ram().transferredBytes() >= plan.triggerAt();
      case TIME -> elapsedMs >= plan.triggerAt();
      default -> false;
    };
  }

  private void judge(LiveMigration lm, Attempt a, FerryChild firstDestination, CutProxy proxy)
      throws IOException, InterruptedException {
    mark("ended");
    record(a, "migration");
    if (a.hang()) {
      outcome = "hang";
      problems.add("hang: migration still '" + a.status() + "' after " + a.elapsedMs() / 1000 + " s");
      LiveMigration.execute(lm.source().qmp(), "migrate_cancel", null);
      return;
    }
    if (a.sourceKilled()) {
      outcome = "source-killed";
      sourceKilled(lm, firstDestination, a);
      return;
    }
    if (a.status().equals("source-exited")) {
      outcome = "source-died";
      problems.add("the source exited with " + lm.source().exitCodeNow() + ": " + lm.source().lastLine());
      return;
    }
    outcome = a.status();
    switch (a.status()) {
      case "completed" -> completed(lm, plan.transport(), lm.endpoint(), "destination");
      case "failed", "cancelled" -> failed(lm, a, firstDestination, proxy);
      default -> throw new IllegalStateException(a.status());
    }
  }

  /** When a phase of the run was reached, ms after its start ({@code times.phases}). */
  private void mark(String phase) {
    ObjectNode times = json.has("times") ? (ObjectNode) json.get("times") : json.putObject("times");
    ObjectNode ph = times.has("phases") ? (ObjectNode) times.get("phases") : times.putObject("phases");
    ph.put(phase, (System.nanoTime() - startNs) / 1_000_000);
  }

  private void record(Attempt a, String name) {
    ObjectNode m = json.putObject(name);
    m.put("status", a.status());
    MigrationInfo i = a.last();
    if (i != null && i.errorDesc() != null) {
      m.put("error-desc", i.errorDesc());
    }
    if (i != null && i.ram() != null) {
      m.put("bytes", i.ram().transferredBytes());
      m.put("dirty-syncs", i.ram().dirtySyncCount());
    }
    ObjectNode times = json.has("times") ? (ObjectNode) json.get("times") : json.putObject("times");
    if (i != null) {
      SoakPlan.putOrNull(times, name + "-total-ms", i.totalTimeMs());
      SoakPlan.putOrNull(times, name + "-downtime-ms", i.downtimeMs());
      SoakPlan.putOrNull(times, name + "-setup-ms", i.setupTimeMs());
    }
  }

  /**
   * After {@code completed}: the destination (started now for {@code file:}) is paused with what
   * it loaded; its digest must equal the stopped source's; then it runs on.
   */
  private void completed(LiveMigration lm, Transport t, Endpoint ep, String what) throws IOException, InterruptedException {
    // as in QEMU, the status says completed a moment before the run state leaves finish-migrate
    if (!awaitRunState(lm.source(), "postmigrate", Duration.ofSeconds(30))) {
      problems.add(what + ": the source is '" + LiveMigration.runState(lm.source()) + "' after completing, not postmigrate");
    }
    FerryChild dst = t == Transport.FILE ? lm.startDestination(ep) : lm.destination();
    Settled s = settle(dst);
    if (!s.loaded()) {
      if (!dst.alive() && plan.fault() == Fault.KILL_DESTINATION && faultFired) {
        json.put("note", "the destination was killed after the source completed: nothing to compare");
        return;
      }
      problems.add(what + ": the migration completed but the destination did not load: " + s.describe());
      dataLoss = true;
      return;
    }
    if (!awaitRunState(dst, "paused", Duration.ofSeconds(30))) {
      problems.add(what + ": the destination is '" + LiveMigration.runState(dst) + "' after the load, not paused (-S)");
      return;
    }
    mark(what + "-loaded");
    LiveMigration.DigestComparison d = lm.compareDigests();
    mark(what + "-compared");
    json.put(what.equals("destination") ? "digest-equal" : "retry-digest-equal", d.equal());
    json.put(what.equals("destination") ? "digest" : "retry-digest", d.summary());
    if (!d.equal()) {
      dataLoss = true;
      problems.add(what + ": DATA LOSS: " + d.difference());
      return;
    }
    runsOn(dst, what);
  }

  /** The stress pattern (the oracle left when there is no source to compare with). */
  private void stressCheck(FerryChild dst, String what) throws IOException, InterruptedException {
    if (!plan.machineProgram().equals("stress")) {
      return;
    }
    JsonNode r = LiveMigration.execute(dst.qmp(), "ferry-stress-check", null);
    if (!r.path("passed").asBoolean()) {
      dataLoss = true;
      problems.add(what + ": DATA LOSS: stress check " + r);
    }
  }

  /** {@code cont}; the guest runs (a writing guest changes its RAM). */
  private void runsOn(FerryChild dst, String what) throws IOException, InterruptedException {
    LiveMigration.execute(dst.qmp(), "cont", null);
    if (!awaitRunState(dst, "running", Duration.ofSeconds(30))) {
      problems.add(what + ": the destination is '" + LiveMigration.runState(dst) + "' after cont, not running");
      return;
    }
    if (!List.of("stress", "random").contains(plan.machineProgram())) {
      Thread.sleep(200);
      String st = LiveMigration.runState(dst);
      if (!st.equals("running")) {
        problems.add(what + ": the destination's guest stopped after cont: " + st);
      }
      return;
    }
    String before = LiveMigration.digest(dst).ram();
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (LiveMigration.digest(dst).ram().equals(before)) {
      if (System.nanoTime() - deadline > 0) {
        problems.add(what + ": the destination's " + plan.program() + " guest did not change its RAM within 30 s of cont");
        return;
      }
      Thread.sleep(100);
    }
  }

  /** The destination after the stream ended: did it load, fail, or is it still waiting? */
  private record Settled(boolean loaded, boolean alive, int exitCode, String incomingStatus, boolean serialWritten, String lastLine) {
    String describe() {
      return (loaded ? "loaded" : "not loaded") + ", " + (alive ? "alive, incoming " + incomingStatus : "exit " + exitCode)
          + ", last line: " + lastLine;
    }
  }

  private Settled settle(FerryChild d) throws InterruptedException {
    long deadline = System.nanoTime() + SETTLE_TIMEOUT.toNanos();
    while (d.alive() && !loadedLine(d) && System.nanoTime() - deadline < 0) {
      Thread.sleep(20);
    }
    return settledNow(d);
  }

  private Settled settledNow(FerryChild d) throws InterruptedException {
    boolean alive = d.alive();
    String incoming = "-";
    if (alive) {
      try {
        incoming = String.valueOf(LiveMigration.execute(d.qmp(), "query-migrate", null).path("status").asText("none"));
      } catch (IOException e) {
        incoming = "(monitor: " + e.getMessage() + ")";
      }
    }
    boolean serial;
    try {
      Path f = d.log().resolveSibling(d.name() + ".serial");
      serial = Files.exists(f) && Files.size(f) > 0;
    } catch (IOException e) {
      serial = false;
    }
    return new Settled(loadedLine(d), d.alive(), d.exitCodeNow(), incoming, serial, d.lastLine());
  }

  private static boolean loadedLine(FerryChild d) {
    return d.lines().stream().anyMatch(l -> l.startsWith(RunCommand.LOADED_PREFIX));
  }

  private boolean awaitRunState(FerryChild c, String want, Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!LiveMigration.runState(c).equals(want)) {
      if (System.nanoTime() - deadline > 0 || !c.alive()) {
        return false;
      }
      Thread.sleep(20);
    }
    return true;
  }

  /**
   * After {@code failed} or {@code cancelled}: the source runs with the error in its status, the
   * destination did not load a partial stream, and a retry to a fresh destination completes.
   */
  private void failed(LiveMigration lm, Attempt a, FerryChild firstDestination, CutProxy proxy)
      throws IOException, InterruptedException {
    FerryChild src = lm.source();
    if (!awaitRunState(src, "running", Duration.ofSeconds(30))) {
      problems.add("the source is '" + LiveMigration.runState(src) + "' after the migration " + a.status() + ", not running");
    }
    if (a.status().equals("failed") && (a.last().errorDesc() == null || a.last().errorDesc().isBlank())) {
      problems.add("the source's status is failed without an error-desc");
    }
    if (!faultFired && plan.fault() != Fault.NONE) {
      problems.add("the migration " + a.status() + " before its fault struck: " + a.last().errorDesc());
    } else if (plan.fault() == Fault.NONE) {
      problems.add("the migration " + a.status() + " without a fault: " + a.last().errorDesc());
    }
    mark("source-checked");
    // the destination of the failed attempt
    FerryChild d = firstDestination;
    if (plan.transport() == Transport.FILE) {
      Path f = Path.of(lm.endpoint().listenUri().substring("file:".length()));
      if (Files.isRegularFile(f)) {
        json.put("partial-file-bytes", Files.size(f));
        d = lm.startDestination(lm.endpoint()); // the partial stream must be refused
      }
    }
    if (d != null) {
      Settled s = settle(d);
      ObjectNode dj = json.putObject("failed-destination");
      dj.put("loaded", s.loaded());
      dj.put("alive", s.alive());
      dj.put("exit", s.exitCode());
      dj.put("incoming-status", s.incomingStatus());
      dj.put("last-line", s.lastLine());
      checkFailedExit(d, s);
      if (s.loaded()) {
        loadedWithoutCompletion(lm, d, s, a, proxy);
      } else if (s.alive() && s.incomingStatus().equals("active")) {
        problems.add("the destination did not notice the end of the stream within " + SETTLE_TIMEOUT.toSeconds() + " s: " + s.describe());
      } else if (s.serialWritten()) {
        problems.add("the guest ran on the destination of a failed migration");
      }
      d.kill();
    }
    retry(lm);
  }

  /**
   * A destination whose incoming migration failed ends as {@code ferry run} documents: exit code 1
   * after one line naming the failure (not a crash, not 0) — unless the soak killed it.
   */
  private void checkFailedExit(FerryChild d, Settled s) {
    boolean killedByUs = plan.fault() == Fault.KILL_DESTINATION && faultFired && s.exitCode() == 128 + 9;
    if (!s.alive() && !s.loaded() && !killedByUs && s.exitCode() != 1) {
      problems.add(d.name() + " of a migration that did not complete exited with " + s.exitCode() + ", not 1: " + s.lastLine());
    }
  }

  /** The same source to a fresh destination, no fault: must complete with equal digests. */
  private void retry(LiveMigration lm) throws IOException, InterruptedException {
    mark("retry");
    Transport t = plan.transport() == Transport.FD ? Transport.UNIX : plan.transport();
    Endpoint ep = lm.newEndpoint(t);
    if (t != Transport.FILE) {
      lm.startDestination(ep);
      ep = lm.endpoint(); // with the bound port
    }
    json.put("retry-transport", t.scheme());
    mark("retry-migrate");
    Attempt a = migrate(lm, ep.connectUri(), false);
    mark("retry-ended");
    record(a, "retry");
    if (a.hang()) {
      problems.add("hang: the retry is still '" + a.status() + "' after " + a.elapsedMs() / 1000 + " s");
      return;
    }
    if (!a.status().equals("completed")) {
      problems.add("the retry to a fresh destination ended '" + a.status() + "': "
          + (a.last() == null ? lm.source().lastLine() : a.last().errorDesc()));
      return;
    }
    completed(lm, t, ep, "retry");
  }

  /** The source is gone: the destination must not report a load of a partial stream. */
  private void sourceKilled(LiveMigration lm, FerryChild firstDestination, Attempt a) throws IOException, InterruptedException {
    FerryChild d = firstDestination;
    if (plan.transport() == Transport.FILE) {
      Path f = Path.of(lm.endpoint().listenUri().substring("file:".length()));
      if (!Files.isRegularFile(f)) {
        return; // killed before it opened the file
      }
      json.put("partial-file-bytes", Files.size(f));
      d = lm.startDestination(lm.endpoint());
    }
    Settled s = settle(d);
    ObjectNode dj = json.putObject("failed-destination");
    dj.put("loaded", s.loaded());
    dj.put("alive", s.alive());
    dj.put("exit", s.exitCode());
    dj.put("incoming-status", s.incomingStatus());
    dj.put("last-line", s.lastLine());
    checkFailedExit(d, s);
    if (s.loaded()) {
      loadedWithoutCompletion(lm, d, s, a, null);
    } else if (s.alive() && s.incomingStatus().equals("active")) {
      boolean nothingSent = a.last() == null || a.last().ram() == null || a.last().ram().transferredBytes() == 0;
      if (plan.transport() == Transport.EXEC && nothingSent) {
        // exec: the destination's command reads a pipe that the source's command never opened (the
        // source died first), so it waits for a writer, as QEMU's does; nothing was loaded
        json.put("destination-waiting", "the source died before its exec command opened the pipe");
      } else {
        problems.add("the destination did not notice the source's death within " + SETTLE_TIMEOUT.toSeconds() + " s: " + s.describe());
      }
    }
  }

  /**
   * A destination loaded although the source did not complete. Legitimate only when the whole
   * stream got through before the fault: the source had reached switch-over (its last status was
   * {@code device}, or its log shows the move to it) or the proxy passed the source's EOF. Then the
   * source's failure came after the stream (a lost SHUT, a cancel or kill during completion): the
   * destination holds a whole machine and, started with {@code -S}, has not run. Anything else is a
   * destination reporting the load of a partial stream. For {@code stress} the pattern is checked
   * either way (without a live source it is the only oracle).
   */
  private void loadedWithoutCompletion(LiveMigration lm, FerryChild d, Settled s, Attempt a, CutProxy proxy)
      throws IOException, InterruptedException {
    boolean switchedOver = "device".equals(a.statusAtFault()) || "device".equals(a.status())
        || lm.source().lines().stream().anyMatch(l -> l.contains("outgoing migration: active -> device"));
    boolean whole = switchedOver || (proxy != null && proxy.sourceEof());
    outcome = outcome + "-after-load";
    json.put("note", "the destination loaded although the migration ended " + a.status() + " (fault in state "
        + a.statusAtFault() + (whole ? ", after switch-over: the whole stream had been sent" : "") + ")");
    if (!whole) {
      dataLoss = true;
      problems.add("DATA LOSS: the destination reports loading a stream the source never finished (" + s.describe() + ")");
    }
    if (d.alive()) {
      String st = LiveMigration.runState(d);
      if (!st.equals("paused") || s.serialWritten()) {
        problems.add("the destination of a migration that did not complete runs: " + st);
      }
      stressCheck(d, "destination that loaded without completion");
    }
  }

  /** Processes whose command line names {@code dir} (children, their {@code sh}/{@code cat}), after a grace period. */
  static List<String> leftovers(Path dir) {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    List<String> found;
    do {
      found = scan(dir.toString());
      if (found.isEmpty()) {
        return found;
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    } while (System.nanoTime() - deadline < 0);
    for (String f : found) { // by pid: they belong to this run
      ProcessHandle.of(Long.parseLong(f.substring(0, f.indexOf(' ')))).ifPresent(ProcessHandle::destroyForcibly);
    }
    return found;
  }

  private static List<String> scan(String needle) {
    List<String> out = new ArrayList<>();
    long self = ProcessHandle.current().pid();
    try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
      for (Path p : procs) {
        try {
          byte[] raw = Files.readAllBytes(p.resolve("cmdline"));
          String cmd = new String(raw, StandardCharsets.UTF_8).replace('\0', ' ').strip();
          long pid = Long.parseLong(p.getFileName().toString());
          if (pid != self && cmd.contains(needle)) {
            String stat = Files.readString(p.resolve("stat"));
            if (stat.contains(") Z ")) {
              continue; // a zombie is reaped by its parent, or by init once the parent is gone
            }
            out.add(pid + " " + (cmd.length() > 160 ? cmd.substring(0, 160) + "..." : cmd));
          }
        } catch (IOException | RuntimeException e) {
          // gone meanwhile
        }
      }
    } catch (IOException e) {
      // no /proc: nothing to check on this system
    }
    return out;
  }
}
