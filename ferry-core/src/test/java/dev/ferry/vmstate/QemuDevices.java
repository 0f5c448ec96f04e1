package dev.ferry.vmstate;

import java.util.ArrayList;
import java.util.List;

/**
 * Java models of a few real QEMU 7.2 pc devices, described with this package's builder the way
 * QEMU declares them, so their bytes and vmdesc can be checked against the captures.
 */
final class QemuDevices {
  private QemuDevices() {}

  static final class Timer {
    long ticks;
    long clock;
  }

  static final VMStateDescription<Timer> TIMER =
      VMStateDescription.<Timer>builder("timer")
          .version(2)
          .minimumVersion(1)
          .int64("cpu_ticks_offset", t -> t.ticks, (t, v) -> t.ticks = v)
          .unused(8)
          .int64("cpu_clock_offset", t -> t.clock, (t, v) -> t.clock = v)
          .since(2)
          .build();

  static final class CpuCommon {
    long halted;
    long interruptRequest;
  }

  static final VMStateDescription<CpuCommon> CPU_COMMON =
      VMStateDescription.<CpuCommon>builder("cpu_common")
          .version(1)
          .uint32("halted", c -> c.halted, (c, v) -> c.halted = v)
          .uint32("interrupt_request", c -> c.interruptRequest, (c, v) -> c.interruptRequest = v)
          .build();

  static final class GlobalState {
    long size;
    byte[] runstate = new byte[100];
  }

  static final VMStateDescription<GlobalState> GLOBALSTATE =
      VMStateDescription.<GlobalState>builder("globalstate")
          .version(1)
          .uint32("size", g -> g.size, (g, v) -> g.size = v)
          .buffer("runstate", 100, g -> g.runstate)
          .build();

  static final class FwCfg {
    long curEntry;
    long curOffset;
    long dmaAddr;
    boolean dmaEnabled = true;
    long tableMrSize;
    long linkerMrSize;
    long rsdpMrSize;
    boolean acpiMrRestore = true;
  }

  static final VMStateDescription<FwCfg> FW_CFG_DMA =
      VMStateDescription.<FwCfg>builder("fw_cfg/dma")
          .version(0)
          .needed(f -> f.dmaEnabled)
          .uint64("dma_addr", f -> f.dmaAddr, (f, v) -> f.dmaAddr = v)
          .build();

  static final VMStateDescription<FwCfg> FW_CFG_ACPI_MR =
      VMStateDescription.<FwCfg>builder("fw_cfg/acpi_mr")
          .version(1)
          .needed(f -> f.acpiMrRestore)
          .uint64("table_mr_size", f -> f.tableMrSize, (f, v) -> f.tableMrSize = v)
          .uint64("linker_mr_size", f -> f.linkerMrSize, (f, v) -> f.linkerMrSize = v)
          .uint64("rsdp_mr_size", f -> f.rsdpMrSize, (f, v) -> f.rsdpMrSize = v)
          .build();

  static final VMStateDescription<FwCfg> FW_CFG =
      VMStateDescription.<FwCfg>builder("fw_cfg")
          .version(2)
          .minimumVersion(1)
          .uint16("cur_entry", f -> f.curEntry, (f, v) -> f.curEntry = v)
          .uint16("cur_offset", f -> f.curOffset, (f, v) -> f.curOffset = v)
          .existsIf((f, version) -> version == 1)
          .uint32("cur_offset", f -> f.curOffset, (f, v) -> f.curOffset = v)
          .since(2)
          .subsection(FW_CFG_DMA)
          .subsection(FW_CFG_ACPI_MR)
          .build();

  static final class DmaRegs {
    int[] now = new int[2];
    short[] base = new short[2];
    long mode;
    long page;
    long pageh;
    long dack;
    long eop;
  }

  static final class Dma {
    long command;
    long mask;
    long flipFlop;
    long dshift;
    List<DmaRegs> regs = new ArrayList<>(List.of(new DmaRegs(), new DmaRegs(), new DmaRegs(), new DmaRegs()));
  }

  static final VMStateDescription<DmaRegs> DMA_REGS =
      VMStateDescription.<DmaRegs>builder("dma_regs")
          .version(1)
          .int32Array("now", 2, r -> r.now)
          .uint16Array("base", 2, r -> r.base)
          .uint8("mode", r -> r.mode, (r, v) -> r.mode = v)
          .uint8("page", r -> r.page, (r, v) -> r.page = v)
          .uint8("pageh", r -> r.pageh, (r, v) -> r.pageh = v)
          .uint8("dack", r -> r.dack, (r, v) -> r.dack = v)
          .uint8("eop", r -> r.eop, (r, v) -> r.eop = v)
          .build();

  static final VMStateDescription<Dma> DMA =
      VMStateDescription.<Dma>builder("dma")
          .version(1)
          .uint8("command", d -> d.command, (d, v) -> d.command = v)
          .uint8("mask", d -> d.mask, (d, v) -> d.mask = v)
          .uint8("flip_flop", d -> d.flipFlop, (d, v) -> d.flipFlop = v)
          .int32("dshift", d -> d.dshift, (d, v) -> d.dshift = v)
          .structArray("regs", 4, DMA_REGS, d -> d.regs)
          .build();

  static final class HpetTimer {
    long tn;
    long config;
    long cmp;
    long fsb;
    long period;
    long wrapFlag;
    long expiryNs = -1;
  }

  static final class Hpet {
    long config;
    long isr;
    long counter;
    long numTimers;
    List<HpetTimer> timers = new ArrayList<>();
    long rtcIrqLevel;
    long hpetOffset;
    boolean offsetSaved;
  }

  static final VMStateDescription<HpetTimer> HPET_TIMER =
      VMStateDescription.<HpetTimer>builder("hpet_timer")
          .version(1)
          .uint8("tn", t -> t.tn, (t, v) -> t.tn = v)
          .uint64("config", t -> t.config, (t, v) -> t.config = v)
          .uint64("cmp", t -> t.cmp, (t, v) -> t.cmp = v)
          .uint64("fsb", t -> t.fsb, (t, v) -> t.fsb = v)
          .uint64("period", t -> t.period, (t, v) -> t.period = v)
          .uint8("wrap_flag", t -> t.wrapFlag, (t, v) -> t.wrapFlag = v)
          .timer("qemu_timer", t -> t.expiryNs, (t, v) -> t.expiryNs = v)
          .build();

  static final VMStateDescription<Hpet> HPET =
      VMStateDescription.<Hpet>builder("hpet")
          .version(2)
          .minimumVersion(1)
          .uint64("config", h -> h.config, (h, v) -> h.config = v)
          .uint64("isr", h -> h.isr, (h, v) -> h.isr = v)
          .uint64("hpet_counter", h -> h.counter, (h, v) -> h.counter = v)
          .uint8("num_timers", h -> h.numTimers, (h, v) -> h.numTimers = v)
          .since(2)
          .structVarArray("timer", "num_timers", 32, HPET_TIMER, h -> h.timers, HpetTimer::new)
          .subsection(
              VMStateDescription.<Hpet>builder("hpet/rtc_irq_level")
                  .version(1)
                  .needed(h -> h.rtcIrqLevel != 0)
                  .uint8("rtc_irq_level", h -> h.rtcIrqLevel, (h, v) -> h.rtcIrqLevel = v)
                  .build())
          .subsection(
              VMStateDescription.<Hpet>builder("hpet/offset")
                  .version(1)
                  .needed(h -> h.offsetSaved)
                  .uint64("hpet_offset", h -> h.hpetOffset, (h, v) -> h.hpetOffset = v)
                  .build())
          .build();

  static final class Kbd {
    long writeCmd;
    long status;
    long mode;
    long pendingTmp;
    long migrationFlags;
    long obsrc;
    long obdata;
    long cbdata;
    long outport;
    boolean outportPresent;
    boolean extendedState = true;
  }

  static final class IsaKbd {
    Kbd kbd = new Kbd();
  }

  static final VMStateDescription<Kbd> KBD =
      VMStateDescription.<Kbd>builder("pckbd")
          .version(3)
          .uint8("write_cmd", k -> k.writeCmd, (k, v) -> k.writeCmd = v)
          .uint8("status", k -> k.status, (k, v) -> k.status = v)
          .uint8("mode", k -> k.mode, (k, v) -> k.mode = v)
          .uint8("pending_tmp", k -> k.pendingTmp, (k, v) -> k.pendingTmp = v)
          .subsection(
              VMStateDescription.<Kbd>builder("pckbd_outport")
                  .version(1)
                  .needed(k -> k.outportPresent)
                  .uint8("outport", k -> k.outport, (k, v) -> k.outport = v)
                  .build())
          .subsection(
              VMStateDescription.<Kbd>builder("pckbd/extended_state")
                  .version(0)
                  .needed(k -> k.extendedState)
                  .uint32("migration_flags", k -> k.migrationFlags, (k, v) -> k.migrationFlags = v)
                  .uint32("obsrc", k -> k.obsrc, (k, v) -> k.obsrc = v)
                  .uint8("obdata", k -> k.obdata, (k, v) -> k.obdata = v)
                  .uint8("cbdata", k -> k.cbdata, (k, v) -> k.cbdata = v)
                  .build())
          .build();

  static final VMStateDescription<IsaKbd> PCKBD =
      VMStateDescription.<IsaKbd>builder("pckbd")
          .version(3)
          .struct("kbd", KBD, i -> i.kbd)
          .build();

  static final class Rtc {
    byte[] cmos = new byte[128];
    long cmosIndex;
    long periodicTimer = -1;
    long nextPeriodicTime;
    long irqCoalesced;
    long period;
    long baseRtc;
    long lastUpdate;
    long offset;
    long updateTimer = -1;
    long nextAlarmTime;
    long reinjectCount;
  }

  static final VMStateDescription<Rtc> RTC =
      VMStateDescription.<Rtc>builder("mc146818rtc")
          .version(3)
          .minimumVersion(1)
          .buffer("cmos_data", 128, r -> r.cmos)
          .uint8("cmos_index", r -> r.cmosIndex, (r, v) -> r.cmosIndex = v)
          .unused(7 * 4)
          .timer("periodic_timer", r -> r.periodicTimer, (r, v) -> r.periodicTimer = v)
          .int64("next_periodic_time", r -> r.nextPeriodicTime, (r, v) -> r.nextPeriodicTime = v)
          .unused(3 * 8)
          .uint32("irq_coalesced", r -> r.irqCoalesced, (r, v) -> r.irqCoalesced = v)
          .since(2)
          .uint32("period", r -> r.period, (r, v) -> r.period = v)
          .since(2)
          .uint64("base_rtc", r -> r.baseRtc, (r, v) -> r.baseRtc = v)
          .since(3)
          .uint64("last_update", r -> r.lastUpdate, (r, v) -> r.lastUpdate = v)
          .since(3)
          .int64("offset", r -> r.offset, (r, v) -> r.offset = v)
          .since(3)
          .timer("update_timer", r -> r.updateTimer, (r, v) -> r.updateTimer = v)
          .since(3)
          .uint64("next_alarm_time", r -> r.nextAlarmTime, (r, v) -> r.nextAlarmTime = v)
          .since(3)
          .subsection(
              VMStateDescription.<Rtc>builder("mc146818rtc/irq_reinject_on_ack_count")
                  .version(1)
                  .needed(r -> r.reinjectCount != 0)
                  .uint16("irq_reinject_on_ack_count", r -> r.reinjectCount,
                      (r, v) -> r.reinjectCount = v)
                  .build())
          .build();

  static final class PciBus {
    long nirq = 4;
    int[] irqCount = new int[4];
  }

  static final VMStateDescription<PciBus> PCIBUS =
      VMStateDescription.<PciBus>builder("PCIBUS")
          .version(1)
          .int32Equal("nirq", b -> b.nirq)
          .int32VarArray("irq_count", "nirq", 256, b -> b.irqCount, (b, a) -> b.irqCount = a)
          .build();
}
