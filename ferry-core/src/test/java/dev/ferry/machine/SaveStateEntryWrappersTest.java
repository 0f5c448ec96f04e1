package dev.ferry.machine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.savevm.ForwardingSaveStateEntry;
import dev.ferry.savevm.SaveStateEntry;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.VMStateEntry;
import dev.ferry.vmstate.VMStateDescription;
import java.lang.reflect.Method;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Entries that wrap another (the cpu's version choice, the RAM layout of an older machine type,
 * globalstate's run state) forward everything they do not change, priority included: the section
 * order is the priority order whoever wraps an entry.
 */
class SaveStateEntryWrappersTest {
  private static final class Dev {}

  private static VMStateEntry<Dev> entry(String name, int priority) {
    return VMStateEntry.of(name, 0, VMStateDescription.<Dev>builder(name).version(1).priority(priority).build(), new Dev());
  }

  @Test
  void theForwardingEntryForwardsEveryMethodOfTheInterface() throws Exception {
    for (Method m : SaveStateEntry.class.getMethods()) {
      Method impl = ForwardingSaveStateEntry.class.getMethod(m.getName(), m.getParameterTypes());
      assertThat(impl.getDeclaringClass()).as(m.getName()).isEqualTo(ForwardingSaveStateEntry.class);
    }
  }

  @Test
  void aWrappedEntryKeepsItsPriorityAndItsPlaceInTheSectionOrder() {
    SaveStateRegistry r = new SaveStateRegistry();
    r.register(entry("plain", 0));
    r.register(new ForwardingSaveStateEntry(entry("urgent", 3)) {
      @Override
      public boolean needed() {
        return false;
      }
    });
    r.register(entry("later", 0));
    List<String> order = r.all().stream().map(SaveStateRegistry.Registration::idstr).toList();
    assertThat(order).containsExactly("urgent", "plain", "later");
    assertThat(r.all().get(0).priority()).isEqualTo(3);
  }

  @Test
  void theCpuAndRamLayoutWrappersForwardThePriorityOfTheirDescription() {
    SaveStateEntry cpu = new CpuDevice(0, "idle", CpuDevice.Layout.V2).stateEntry();
    assertThat(cpu).isInstanceOf(ForwardingSaveStateEntry.class);
    assertThat(cpu.priority()).isEqualTo(CpuDevice.VMSTATE_V2.priority());
    RamLayout layout = new RamLayout(List.of());
    SaveStateEntry loadOnly = layout.loadOnlyEntry();
    assertThat(loadOnly).isInstanceOf(ForwardingSaveStateEntry.class);
    assertThat(loadOnly.priority()).isEqualTo(layout.entry().priority());
    assertThat(loadOnly.needed()).isFalse();
  }
}
