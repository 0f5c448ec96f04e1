package dev.ferry.migration;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Percentage;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * Ferry's JDK Flight Recorder events: a migration seen from inside, next to the JVM's own GC,
 * safepoint and I/O events. Record with {@code java -XX:StartFlightRecording:filename=m.jfr ...}
 * (or {@code jcmd PID JFR.start}) and read with {@code jfr print --events 'ferry.*' m.jfr}. All are
 * enabled by default and cost nothing when no recording runs.
 *
 * <ul>
 *   <li>{@code ferry.MigrationPhase}: one per status a side went through (setup, active, device —
 *       the switch-over —, postcopy-active, ...), lasting as long as the status did; the terminal
 *       status (completed, failed, cancelled) is an instant event.
 *   <li>{@code ferry.MigrationPass}: one per dirty-log sync of an outgoing migration (a pass over
 *       RAM), lasting from the previous sync: pages found dirty, bytes then pending.
 *   <li>{@code ferry.SwitchOver}: the downtime of an outgoing migration, from pausing the guest to
 *       the destination's confirmation: bytes sent while paused, whether it completed.
 *   <li>{@code ferry.ThrottleStep}: a change of the guest's CPU throttle (auto-converge), from a step
 *       up to its end at the switch-over, the postcopy switch or the migration's end.
 *   <li>{@code ferry.PostcopyFault}: a destination vCPU waiting for a page it touched before it
 *       arrived (postcopy; defined for it, emitted once it exists), lasting the wait.
 * </ul>
 */
public final class MigrationEvents {
  private MigrationEvents() {}

  @Name("ferry.MigrationPhase")
  @Label("Migration Phase")
  @Category({"Ferry", "Migration"})
  @Description("A migration status and how long a side stayed in it")
  @StackTrace(false)
  public static final class Phase extends Event {
    @Label("Side")
    @Description("outgoing or incoming")
    public String side;

    @Label("Phase")
    @Description("QAPI MigrationStatus name: setup, active, device (switch-over), completed, ...")
    public String phase;

    @Label("Next Phase")
    public String nextPhase;

    @Label("Reason")
    @Description("why the side left this phase")
    public String reason;
  }

  @Name("ferry.MigrationPass")
  @Label("Migration Pass")
  @Category({"Ferry", "Migration"})
  @Description("A dirty-log sync of an outgoing migration, lasting from the previous one")
  @StackTrace(false)
  public static final class Pass extends Event {
    @Label("Pass")
    public long pass;

    @Label("Dirty Pages")
    @Description("pages the guest dirtied since the previous sync")
    public long dirtyPages;

    @Label("Pending")
    @DataAmount
    public long pendingBytes;

    @Label("Threshold")
    @Description("bandwidth x downtime-limit: what may be left for the switch-over")
    @DataAmount
    public long thresholdBytes;
  }

  @Name("ferry.SwitchOver")
  @Label("Switch-over")
  @Category({"Ferry", "Migration"})
  @Description("The downtime of an outgoing migration: the guest paused until the destination confirmed")
  @StackTrace(false)
  public static final class SwitchOver extends Event {
    @Label("Sent While Paused")
    @DataAmount
    public long downtimeBytes;

    @Label("Completed")
    public boolean completed;
  }

  @Name("ferry.ThrottleStep")
  @Label("Throttle Step")
  @Category({"Ferry", "Migration"})
  @Description("The guest's CPU throttle changed (auto-converge)")
  @StackTrace(false)
  public static final class ThrottleStep extends Event {
    @Label("Previous")
    @Percentage
    public double previousPercentage;

    @Label("Throttle")
    @Percentage
    public double percentage;

    @Label("Reason")
    public String reason;
  }

  @Name("ferry.PostcopyFault")
  @Label("Postcopy Fault")
  @Category({"Ferry", "Migration"})
  @Description("A destination vCPU waited for a page it touched before the page arrived")
  @StackTrace(false)
  public static final class PostcopyFault extends Event {
    @Label("RAM Block")
    public String block;

    @Label("Offset")
    public long offset;

    @Label("vCPU")
    public int vcpu;

    @Label("Wait")
    @Timespan(Timespan.NANOSECONDS)
    @Description("also the event's duration")
    public long waitNs;
  }
}
